"""OpenAI fine-tuning: the curated set exported as OpenAI's chat JSONL, a job created and
followed to its end, against a local server speaking OpenAI's files and fine-tuning API."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from finetune.curate import Pair, Report
from finetune.dataset import save
from tests.conftest import ATENDE, ROOT, server_env
from tests.fake_openai_ft import KEY, FakeOpenAIFineTuning, check_jsonl


@pytest.fixture
def fake():  # type: ignore[no-untyped-def]
    f = FakeOpenAIFineTuning()
    yield f
    f.close()


def curated(folder: Path, n: int) -> Path:
    pairs = [Pair(f"qual o prazo de entrega {i} em SP?", f"Entregamos em {i + 2} dias úteis.",
                  "chat", f"c{i}", [f"Prazo para SP: {i + 2} dias úteis."], ["entrega.md"])
             for i in range(n)]
    save(pairs, Report(kept=n), folder)
    return folder


def run(args: list[str], tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ATENDE, "finetune", *args], capture_output=True, text=True,
                          cwd=ROOT, env=server_env(tmp, COLUMNS="200", **env), timeout=120)


def test_export_is_openai_chat_jsonl_with_the_serving_prompt(tmp_path: Path) -> None:
    data = curated(tmp_path / "set", 12)
    out = run(["openai-export", str(data), "--out", str(tmp_path / "ft.jsonl")], tmp_path)
    assert out.returncode == 0, out.stderr
    raw = (tmp_path / "ft.jsonl").read_bytes()
    assert check_jsonl(raw) is None
    first = json.loads(raw.decode().splitlines()[0])
    roles = [m["role"] for m in first["messages"]]
    assert roles == ["system", "user", "assistant"]
    assert "Prazo para SP: 2 dias úteis." in first["messages"][0]["content"]  # passages ride along
    assert first["messages"][2]["content"] == "Entregamos em 2 dias úteis."


def test_job_runs_to_the_fine_tuned_model(tmp_path: Path, fake: FakeOpenAIFineTuning) -> None:
    data = curated(tmp_path / "set", 12)
    run(["openai-export", str(data), "--out", str(tmp_path / "ft.jsonl")], tmp_path)
    out = run(["openai-start", str(tmp_path / "ft.jsonl"), "--suffix", "loja", "--poll", "0.05",
               "--epochs", "2"], tmp_path, OPENAI_API_KEY=KEY, OPENAI_BASE_URL=fake.url)
    assert out.returncode == 0, out.stderr
    assert "succeeded" in out.stdout and "ft:gpt-4o-mini-2024-07-18:org-test:loja:abc123" in \
        out.stdout
    job = fake.jobs["ftjob-1"]
    assert job["hyperparameters"] == {"n_epochs": 2}
    assert fake.files["file-1"] == (tmp_path / "ft.jsonl").read_bytes()


def test_rejected_file_and_bad_key_fail_with_the_reason(tmp_path: Path,
                                                        fake: FakeOpenAIFineTuning) -> None:
    data = curated(tmp_path / "set", 3)  # OpenAI wants at least 10 examples
    run(["openai-export", str(data), "--out", str(tmp_path / "ft.jsonl")], tmp_path)
    out = run(["openai-start", str(tmp_path / "ft.jsonl"), "--poll", "0.05"], tmp_path,
              OPENAI_API_KEY=KEY, OPENAI_BASE_URL=fake.url)
    assert out.returncode == 2
    assert "failed" in out.stderr and "at least 10" in out.stderr
    out = run(["openai-start", str(tmp_path / "ft.jsonl")], tmp_path,
              OPENAI_API_KEY="sk-wrong-key-0000", OPENAI_BASE_URL=fake.url)
    assert out.returncode == 2 and "Incorrect API key" in out.stderr
    assert "sk-wrong-key-0000" not in out.stderr + out.stdout
