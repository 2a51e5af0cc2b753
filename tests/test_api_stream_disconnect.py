"""A streamed `/v1/chat/completions` reply whose client hangs up mid-way: the model's stream is
closed (a paid provider stops writing) and the tokens it wrote are recorded once, so a budget
cannot be bypassed by dropping connections."""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from eval.answers import MODEL
from tests.conftest import ATENDE, DEMO_DOCS, ROOT, Server, raw_sql, serve_mode, server_env
from tests.fake_openai import FakeOpenAI

# A long reply the guard lets through: no numbers, no loop, nothing from the prompt.
SYLLABLES = ["ba", "ce", "di", "fo", "gu", "la", "me", "ni", "po", "ru", "sa", "te", "vi"]
WORDS = ["".join(w) for w in itertools.product(SYLLABLES, repeat=3)][:400]


def _wait(what: str, check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def paid(tmp_path: Path) -> Iterator[tuple[Server, FakeOpenAI, str]]:
    """The product answering in the model's own words from a remote model, and an API token."""
    fake = FakeOpenAI()
    models = [{"name": "gpt", "provider": "openai", "model": "gpt-fake", "base_url": fake.url,
               "api_key": "sk-test-secret-1234", "max_retries": 0,
               "price_in_per_1k": 0.15, "price_out_per_1k": 0.6}]
    env = server_env(tmp_path, ATENDE_MODELS=json.dumps(models), ATENDE_LLM_DEFAULT="gpt",
                     ATENDE_LLM_MAX_TOKENS="1024")
    subprocess.run([*ATENDE, "kb", "ingest", str(DEMO_DOCS)], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    srv = Server(tmp_path, env, f"sqlite:///{tmp_path / 'atende.db'}")
    srv.start()
    from server.db import sessions_for

    serve_mode(sessions_for(srv.db_url), "default", MODEL)  # the model's words are streamed
    out = subprocess.run([*ATENDE, "tokens", "create", "crm", "--collection", "default"],
                         env={**env, "COLUMNS": "200"}, cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    yield srv, fake, next(w for w in out.split() if w.startswith("atd_"))
    srv.stop()
    fake.close()


def test_a_client_that_hangs_up_mid_stream_is_charged_and_the_model_stopped(paid) -> None:
    srv, fake, token = paid
    fake.script = [("drip", " ".join(WORDS), 0.05)]  # 20 seconds of reply, read whole
    body = {"model": "default", "stream": True,
            "messages": [{"role": "user", "content": "o boleto vence em quantos dias?"}]}
    with httpx.Client(timeout=30) as client, client.stream(
            "POST", f"{srv.url}/v1/chat/completions", json=body,
            headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status_code == 200
        got = []
        for line in resp.iter_lines():
            if line.startswith("data: {"):
                delta = json.loads(line[6:])["choices"][0]["delta"]
                got.append(delta.get("content", ""))
            if len(got) >= 3:
                break  # leaving the block closes the connection mid-reply
    assert "".join(got).strip()

    def usage() -> list[tuple[str, int, int]]:
        return raw_sql(srv.db_url, "SELECT model, prompt_tokens, completion_tokens "
                                   "FROM llm_usage WHERE purpose = 'api'")

    # the model was told: its stream closed long before the reply's end
    assert fake.hung_up.wait(10), "the upstream stream was left open"
    (written, total), = fake.dripped
    assert written < total / 2
    _wait("the cut-off reply's usage", lambda: bool(usage()))
    time.sleep(1)  # and recorded once, not again later
    (model, prompt_tokens, completion_tokens), = usage()
    assert model == "gpt" and prompt_tokens > 50
    # what the model wrote, held back by the guard or not, counts; what it never wrote does not
    assert len(got) <= completion_tokens < len(WORDS)
