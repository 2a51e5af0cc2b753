"""The fine-tuning pipeline end to end on a tiny subset: curate, train (TRL + PEFT LoRA on the
bundled GGUF), export the adapter as GGUF, load it in llama.cpp, calibrate, evaluate, gate.

Marked slow: CI runs it with finetune/configs/tiny.yaml (a few steps on a dozen pairs).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ATENDE, ROOT, server_env

FAQUAD = ROOT.parent / "shared" / "datasets" / "faquad"
DEMO = ROOT / "demo" / "loja-aurora"


def atende(tmp: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ATENDE, *args], capture_output=True, text=True, cwd=ROOT,
                          env=server_env(tmp, COLUMNS="200"), timeout=timeout)


@pytest.mark.slow
@pytest.mark.skipif(not FAQUAD.is_dir(), reason="needs ../shared/datasets/faquad")
def test_tiny_pipeline_from_curation_to_the_gate(tmp_path: Path, llm) -> None:  # type: ignore[no-untyped-def]
    from finetune.train import read_jsonl
    from server.services.model_versions import DEFAULT_ADAPTER

    data, run = tmp_path / "curated", tmp_path / "run"
    out = atende(tmp_path, "finetune", "curate", "--out", str(data), "--passages", "0",
                 "--add-set", str(FAQUAD))
    assert out.returncode == 0, out.stderr
    # Prepared here, trained by the stand-alone step a GPU machine runs, then exported,
    # calibrated and registered here.
    tiny = ["finetune/configs/tiny.yaml", "--set", f"dataset={data}", "--set", f"out={run}"]
    out = atende(tmp_path, "finetune", "train", *tiny, "--prepare-only")
    assert out.returncode == 0, out.stderr[-3000:]
    assert not (run / "checkpoints").exists()
    fitted = subprocess.run([sys.executable, "-m", "finetune.fit", str(run / "config.yaml"),
                             "--heldout", "--set", f"base_gguf={llm.path}"],
                            capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert fitted.returncode == 0, fitted.stderr[-3000:]
    asked = json.loads((run / "heldout.json").read_text())["checkpoints"]
    assert set(asked) == {"checkpoint-2", "checkpoint-3"}
    assert all(0.0 <= a["p_refuse"] <= 1.0 and a["reply"] for a in asked["checkpoint-3"])
    out = atende(tmp_path, "finetune", "checkpoints", *tiny, "--json", str(tmp_path / "ck.json"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert set(json.loads((tmp_path / "ck.json").read_text())) == set(asked)
    out = atende(tmp_path, "finetune", "train", *tiny, "--name", "tiny", "--calibrate-on",
                 str(FAQUAD), "--json", str(tmp_path / "train.json"))
    assert out.returncode == 0, out.stderr[-3000:]
    figures = json.loads((tmp_path / "train.json").read_text())
    assert figures["train"]["steps"] == 3 and figures["train"]["examples"] > 0
    # The figures are those of the run that trained it, not of the re-load that exported it.
    fitted_figures = json.loads((run / "fit.json").read_text())
    assert figures["train"]["train_loss"] > 0
    assert figures["train"]["seconds"] == fitted_figures["seconds"] > 0
    assert 0.0 <= figures["calibration"]["threshold"] <= 1.0
    # Calibrated as serving asks: the held-out FaQuAD train questions, retrieved passages.
    held_out = len(read_jsonl(run / "calibration.jsonl")) // 2
    assert 0 < figures["calibration"]["answerable"] <= held_out
    assert figures["calibration"]["answerable"] == figures["calibration"]["unanswerable"]
    assert (run / "adapter-3.gguf").read_bytes()[:4] == b"GGUF"
    assert (run / "checkpoints").is_dir() and (run / "config.yaml").is_file()

    # The adapter loads in llama.cpp and moves the model toward the refusal it was taught.
    from models.providers.llamacpp import LlamaCppProvider

    tuned = LlamaCppProvider(llm.path, lora_path=run / "adapter-3.gguf", n_ctx=2048)
    refusals = [ex for ex in read_jsonl(run / "calibration.jsonl") if ex.kind == "refuse"]
    before = sum(llm.refusal_probability(ex.messages) for ex in refusals)
    after = sum(tuned.refusal_probability(ex.messages) for ex in refusals)
    assert after > before

    # A chosen earlier checkpoint is exported as it is, training nothing more, into its own
    # file: the version registered first keeps the weights it was judged on. A taken name is
    # refused before anything is exported; a step with no checkpoint is refused by name.
    last = (run / "adapter-3.gguf").read_bytes()
    out = atende(tmp_path, "finetune", "train", *tiny, "--name", "tiny")
    assert out.returncode == 2 and "already exists" in out.stderr
    out = atende(tmp_path, "finetune", "train", *tiny, "--set", "export_step=1", "--name", "x")
    assert out.returncode == 2 and "no checkpoint at step 1" in out.stderr
    out = atende(tmp_path, "finetune", "train", *tiny, "--set", "export_step=2",
                 "--name", "tiny-2", "--json", str(tmp_path / "again.json"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads((tmp_path / "again.json").read_text())["train"]["steps"] == 2
    assert (run / "adapter-3.gguf").read_bytes() == last
    assert (run / "adapter-2.gguf").read_bytes() != last

    # The gate runs the candidate against what serves (the bundled default adapter) and its
    # verdict decides the promotion. On two cases "better beyond noise" means containing both
    # answers where the serving model contains neither (the bootstrap's lower bound is the
    # smaller of the two differences); the default, answering greedily, contains at least one
    # of these two, so the one right outcome is a refusal: exit 1, and no promotion.
    two = tmp_path / "two"
    two.mkdir()
    (two / "docs").symlink_to(DEMO / "docs")
    (two / "qa.jsonl").write_text("".join(json.dumps(case, ensure_ascii=False) + "\n" for case in [
        {"id": "norte", "question": "qual o prazo de entrega pro norte?",
         "answers": ["8 a 15 dias úteis"], "kind": "in_scope", "split": "test",
         "sources": [{"doc": "docs/entregas-e-frete.md",
                      "text": "| Norte | 8 a 15 dias úteis | R$ 34,90 |"}]},
        {"id": "pix", "question": "quais as formas de pagamento?", "answers": ["Pix"],
         "kind": "in_scope", "split": "test",
         "sources": [{"doc": "docs/pagamentos.md", "text": "O Pix é a forma de pagamento mais "
                      "rápida e tem 5% de desconto sobre o valor dos produtos."}]}]))
    out = atende(tmp_path, "models", "compare", "tiny", "--set", str(two), "--top-k", "2",
                 "--json", str(tmp_path / "gate.json"))
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Gate refused" in out.stdout
    gate = json.loads((tmp_path / "gate.json").read_text())
    serving = {c["case"]: c["contained"] for c in gate["cases"]
               if c["method"] == "serving" and c["kind"] == "in_scope"}
    assert any(serving.values()), "the reason the gate must refuse is gone: see above"
    verdict = gate["verdict"]
    assert {d["metric"] for d in verdict["deltas"]} >= {"containment", "unanswerable_refused"}
    assert verdict["passed"] is False
    assert any(r.startswith("containment is not better beyond noise")
               for r in verdict["reasons"])
    promoted = atende(tmp_path, "models", "promote", "tiny")
    assert promoted.returncode == 2 and "did not pass the gate" in promoted.stderr
    listed = atende(tmp_path, "models", "versions", "--json", str(tmp_path / "v.json"))
    assert listed.returncode == 0
    versions = {v["name"]: v for v in json.loads((tmp_path / "v.json").read_text())}
    assert versions["tiny"]["gate"]["passed"] is False
    assert [v["name"] for v in versions.values() if v["serving"]] == [DEFAULT_ADAPTER.name]
    assert versions["tiny"]["data_sha256"] == figures["data_sha256"]
