"""A swapped-out local model frees its memory, and a reply it is writing still finishes.

llama-cpp-python's objects hold reference cycles, so a model whose last reference goes stays in
memory until the garbage collector happens to run: before the provider closed it, every swap
(promotion or rollback) kept about 340 MB more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.base import ChatMessage, ModelError
from server.services.model_versions import DEFAULT_ADAPTER
from tests.conftest import ROOT, server_env

ASK: list[ChatMessage] = [{"role": "user", "content": "Qual o prazo para trocar um produto?"}]

# Serves the bundled default adapter, then swaps between the plain base model and it through
# rollback / promote and Runtime.sync_local, as the admin API does; a short reply after each.
SWAPS = """
import json
from server import runtime
from server.db import sessions_for
from server.services import model_versions as mv
from server.settings import get_settings

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(x.split()[1]) // 1024 for x in f if x.startswith("VmRSS:"))

settings = get_settings()
rt = runtime.start(settings)
sessions = sessions_for(settings.sqlalchemy_url)
ask = [{"role": "user", "content": "Qual o prazo para trocar um produto?"}]
served, rss = [], []
for step in range(%d):
    if step %% 2 == 0:
        mv.rollback(sessions)
    else:  # its verdict against the base model, which serves now
        mv.record_gate(sessions, mv.DEFAULT_ADAPTER.name, {"passed": True, "reasons": []}, {})
        mv.promote(sessions, mv.DEFAULT_ADAPTER.name, root=settings.data_dir)
    rt.sync_local()
    rt.llm.complete(ask, max_tokens=2, temperature=0.0)
    lora = rt.models[runtime.LOCAL][0].lora_path
    served.append(lora.parent.name if lora else "base")
    rss.append(rss_mb())
print(json.dumps({"served": served, "rss": rss}))
"""


def _bundled() -> Path:
    from models.bundled import bundled_gguf

    return bundled_gguf(Path(os.environ.get("ATENDE_TEST_MODELS", ROOT / "data" / "models")))


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="RSS read from /proc")
def test_swapping_the_local_model_keeps_memory_bounded(tmp_path: Path) -> None:
    swaps = 8
    env = server_env(tmp_path, ATENDE_LLM_MODEL_PATH=str(_bundled()))
    out = subprocess.run([sys.executable, "-c", SWAPS % swaps], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    default = DEFAULT_ADAPTER.name
    assert got["served"] == ["base", default] * (swaps // 2)  # it did swap every time
    rss = got["rss"]
    # After the first swap, no later one holds a model more: one model is about 340 MB.
    assert max(rss[1:]) - rss[0] < 150, f"RSS (MB) after each swap: {rss}"


def test_a_reply_being_written_finishes_on_a_closed_model_then_its_memory_goes() -> None:
    from models.providers.llamacpp import LlamaCppProvider

    model = LlamaCppProvider(_bundled(), n_ctx=1024)
    expected = model.complete(ASK, max_tokens=12, temperature=0.0).text
    pieces = model.stream(ASK, max_tokens=12, temperature=0.0)
    first = next(pieces)  # the reply has begun: the model is in use
    model.close()  # the swap: it must not be freed under the reply
    assert model.llama is not None
    assert (first + "".join(pieces)).strip() == expected
    with pytest.raises(ModelError, match="closed"):
        model.llama  # noqa: B018  (freed as the reply ended)


def test_a_call_after_close_still_answers_and_frees_again() -> None:
    from models.providers.llamacpp import LlamaCppProvider

    model = LlamaCppProvider(_bundled(), n_ctx=1024)
    tokens = model.count_tokens("Qual o prazo para trocar um produto?")
    model.close()
    with pytest.raises(ModelError, match="closed"):
        model.llama  # noqa: B018  (freed at once: nothing was using it)
    # A turn that took this model before the swap and asks it afterwards still gets its answer.
    assert model.count_tokens("Qual o prazo para trocar um produto?") == tokens
    assert model.complete(ASK, max_tokens=4, temperature=0.0).text
    with pytest.raises(ModelError, match="closed"):
        model.llama  # noqa: B018
    model.close()  # closing twice is harmless
