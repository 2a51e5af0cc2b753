"""The openai provider against a real OpenAI-compatible server and OpenAI's error wire format."""

from __future__ import annotations

import logging
import subprocess
import sys
import time

import httpx
import pytest

from models import router
from models.base import ModelError, ModelTimeout
from models.providers.openai import OpenAIProvider
from models.spec import ModelSpec
from tests.conftest import free_port
from tests.fake_openai import FakeOpenAI

KEY = "sk-test-secret-1234"
ASK = [{"role": "user", "content": "Qual é a capital do Brasil?"}]


@pytest.fixture
def fake():
    f = FakeOpenAI()
    yield f
    f.close()


def _provider(url: str, **kw) -> OpenAIProvider:
    spec = ModelSpec(name="gpt", provider="openai", base_url=url, model="gpt-fake",
                     api_key=KEY, **{"timeout_s": 5, "max_retries": 2, **kw})
    return OpenAIProvider(spec)


@pytest.fixture(scope="module")
def llama_server(llm):
    """llama-cpp-python's own OpenAI-compatible server with the bundled GGUF."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(llm.path),
                             "--port", str(port), "--n_ctx", "1024", "--chat_format", "gemma",
                             "--model_alias", "gemma"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(10)


def test_real_openai_compatible_server(llama_server) -> None:
    p = OpenAIProvider(ModelSpec(name="srv", provider="openai", base_url=llama_server,
                                 model="gemma"))
    done = p.complete(ASK, max_tokens=8, temperature=0.0)
    assert done.prompt_tokens > 5 and 0 < done.completion_tokens <= 8
    assert done.text and done.model == "srv"
    assert "".join(p.stream(ASK, max_tokens=8, temperature=0.0)).strip()


def test_completion_and_stream(fake) -> None:
    fake.script = [("ok", " Brasília. "), ("ok", "Brasília fica no DF")]
    p = _provider(fake.url)
    done = p.complete(ASK, max_tokens=16, temperature=0.1)
    assert (done.text, done.prompt_tokens, done.completion_tokens) == ("Brasília.", 11, 3)
    assert fake.requests[0]["max_tokens"] == 16 and fake.requests[0]["model"] == "gpt-fake"
    assert "".join(p.stream(ASK, max_tokens=16, temperature=0.1)) == "Brasília fica no DF"


def test_429_is_retried_after_retry_after(fake) -> None:
    fake.script = [("status", 429, {"Retry-After": "1"}), ("ok", "ok")]
    assert _provider(fake.url).complete(ASK, max_tokens=4, temperature=0).text == "ok"
    assert fake.times[1] - fake.times[0] >= 0.95


def test_500_is_retried_then_reported(fake) -> None:
    fake.script = [("status", 500), ("ok", "ok")]
    assert _provider(fake.url).complete(ASK, max_tokens=4, temperature=0).text == "ok"
    fake.script = [("status", 500)] * 3
    with pytest.raises(ModelError, match="answered 500"):
        _provider(fake.url).complete(ASK, max_tokens=4, temperature=0)
    assert len(fake.requests) == 5  # 2 + 1 try and 2 retries


def test_bad_key_is_not_retried_and_never_shown(fake, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    fake.script = [("status", 401)]
    with pytest.raises(ModelError, match="401 .check the API key") as err:
        _provider(fake.url).complete(ASK, max_tokens=4, temperature=0)
    assert len(fake.requests) == 1
    assert KEY not in str(err.value) and KEY not in caplog.text
    assert "sk-test" not in str(err.value)  # not even the masked key OpenAI echoes


def test_slow_server_times_out(fake) -> None:
    fake.script = [("slow", 3)]
    with pytest.raises(ModelTimeout):
        _provider(fake.url, timeout_s=0.5, max_retries=0).complete(ASK, max_tokens=4,
                                                                   temperature=0)


@pytest.mark.parametrize("body", [b"not json at all", b'{"choices": []}',
                                  b'{"choices": [{"message": {"content": null}}]}'])
def test_malformed_body_is_a_clear_error(fake, body: bytes) -> None:
    fake.script = [("garbage", body)]
    with pytest.raises(ModelError, match="malformed"):
        _provider(fake.url, max_retries=0).complete(ASK, max_tokens=4, temperature=0)


def test_fallback_chain_goes_to_the_next_model(fake, llm) -> None:
    fake.script = [("status", 500)]
    remote = _provider(fake.url, max_retries=0)
    local = ModelSpec(name="local", provider="llamacpp", path=llm.path)
    routed = router.complete([(remote.spec, remote), (local, llm)], ASK, max_tokens=4,
                             temperature=0)
    assert routed.spec.name == "local" and routed.completion.completion_tokens > 0
    assert routed.failures == [("gpt", "server answered 500")]
    fake.script = [("status", 500)]
    with pytest.raises(router.AllModelsFailed, match="gpt: server answered 500"):
        router.complete([(remote.spec, remote)], ASK, max_tokens=4, temperature=0)
