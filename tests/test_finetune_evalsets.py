"""Eval-set cases as training pairs: the chunks a customer's question is answered from (a table
row with its header), out-of-scope near-misses as refusals on their nearest chunks, and the
corpus's split by business kept (dev and test businesses never reach training)."""

from __future__ import annotations

import json
from pathlib import Path

from eval.evalset import load
from finetune.evalsets import gather, pairs, sets_of
from finetune.examples import build
from models.spec import REFUSAL
from tests.test_finetune_examples import WordEmbedder

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "atende-negocios"
SPLITS = json.loads((CORPUS / "splits.json").read_text(encoding="utf-8"))


def test_an_answerable_case_is_shown_the_chunk_holding_its_passage_table_header_and_all() -> None:
    es = load(CORPUS / "eletro-ponto")
    got, _ = pairs(es, "train")
    case = next(c for c in es.cases if c.id == "eletro-ponto-002")  # a row of a price table
    pair = next(p for p in got if p.conversation == case.id)
    assert pair.answer == case.answers[0] and pair.source == "eletro-ponto"
    row = case.sources[0].text
    shown = next(t for t in pair.passages if " ".join(row.split()) in " ".join(t.split()))
    lines = [" ".join(line.split()) for line in shown.split("\n")]
    above = lines[:lines.index(" ".join(row.split()))]
    assert any(line.startswith("|") for line in above)  # the row came with its table's header
    assert pair.docs and all(d.startswith("eletro-ponto/") for d in pair.docs)


def test_an_out_of_scope_case_becomes_a_refusal_pair_on_its_own_business_chunks() -> None:
    es = load(CORPUS / "conecta-fibra")
    got, _ = pairs(es, "test")
    near = [c for c in es.cases if c.kind == "out_of_scope"]
    refusals = [p for p in got if not p.answer]
    assert len(refusals) == len(near) > 0
    assert all(len(p.passages) == 2 and all(d.startswith("conecta-fibra/") for d in p.docs)
               for p in refusals)
    assert not any(p.conversation.startswith("conecta") and p.question in
                   {c.question for c in es.cases if c.kind == "injection"} for p in got)


def test_a_corpus_gives_only_its_train_businesses_and_holds_the_others_out() -> None:
    assert len(sets_of(CORPUS)) == 18 and sets_of(CORPUS / "pet-amigo") == [CORPUS / "pet-amigo"]
    got, held_out = gather([CORPUS], "train")
    assert {p.source for p in got} == set(SPLITS["train"])
    for business in SPLITS["dev"] + SPLITS["test"]:
        asked = {c.question for c in load(CORPUS / business).cases}
        assert asked <= set(held_out)


def test_a_pair_with_no_answer_teaches_only_the_refusal() -> None:
    es = load(CORPUS / "conecta-fibra")
    got, _ = pairs(es, "test")
    train, cal = build(got, WordEmbedder(), passages=2, negatives=0.25, calibration=0.0,
                       max_target_words=30, seed=1)
    asked = {p.question for p in got if not p.answer}
    mine = [e for e in train if e.messages[-1]["content"] in asked]
    assert len(mine) == len(asked) and {e.completion for e in mine} == {REFUSAL}
    assert not cal


def test_a_wrong_set_path_is_refused_before_anything_is_written_or_trained(tmp_path: Path) -> None:
    import subprocess

    from tests.conftest import ATENDE, ROOT, server_env

    env = server_env(tmp_path / "data")
    subprocess.run([*ATENDE, "db", "upgrade"], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    bad = str(tmp_path / "nowhere")
    curated = tmp_path / "set"
    run = subprocess.run([*ATENDE, "finetune", "curate", "--out", str(curated), "--passages",
                          "0", "--add-set", bad], env=env, cwd=ROOT, capture_output=True,
                         text=True)
    assert run.returncode != 0 and "needs docs/ and qa.jsonl" in run.stdout + run.stderr
    assert not curated.exists()
    run = subprocess.run([*ATENDE, "finetune", "curate", "--out", str(curated), "--passages",
                          "0", "--add-set", str(CORPUS / "pet-amigo")], env=env, cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    out = tmp_path / "run"
    run = subprocess.run([*ATENDE, "finetune", "train", str(ROOT / "finetune/configs/tiny.yaml"),
                          "--set", f"dataset={curated}", "--set", f"out={out}",
                          "--calibrate-on", bad], env=env, cwd=ROOT, capture_output=True,
                         text=True)
    assert run.returncode != 0 and "--calibrate-on" in run.stdout + run.stderr
    assert not out.exists()  # refused before an hour of training, not after it
