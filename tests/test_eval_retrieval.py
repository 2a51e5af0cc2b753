"""Retrieval eval: relevance independent of chunking, metrics, and the CLI on the demo set."""

from __future__ import annotations

import json
import math
import subprocess

import pytest

from eval import metrics
from eval.evalset import Source, load, relevant
from rag.evidence import NEAR_MISS_FEATURES, Learned
from server.settings import Settings
from tests.conftest import ATENDE, ROOT

DEMO = ROOT / "demo" / "loja-aurora"


def test_relevance_by_containment_or_half_the_words() -> None:
    src = Source("trocas.md", "Você tem 30 dias corridos para trocar o produto")
    assert relevant("trocas.md", "Prazo. Você tem 30 dias corridos\npara trocar o produto.", src)
    assert relevant("trocas.md", "30 dias corridos para trocar o, diz a loja", src)  # 7 of 9
    assert not relevant("trocas.md", "Você tem direito a troca", src)
    assert not relevant("trocas.md", "para o produto você tem dias", src)  # scattered words
    assert not relevant("outro.md", "Você tem 30 dias corridos para trocar o produto", src)


def test_metrics() -> None:
    rels = [False, True, False, True]
    assert metrics.recall_at(rels, 1) == 0 and metrics.recall_at(rels, 5) == 1
    assert metrics.mrr_at(rels, 10) == 0.5
    ideal = 1 + 1 / math.log2(3)
    assert metrics.ndcg_at(rels, 10, 2) == pytest.approx((1 / math.log2(3) + 1 / math.log2(5))
                                                         / ideal)
    assert metrics.ndcg_at([True], 10, 1) == 1.0
    assert metrics.percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0


def test_demo_set_loads_and_every_source_is_in_its_document() -> None:
    es = load(DEMO)
    assert len(es.cases) == 30 and len(es.docs) == 5
    texts = {p.name: p.read_text() for p in es.docs}
    for case in es.cases:
        for src in case.sources:
            assert src.text in texts[src.doc], case.id


def test_malformed_set_names_the_line(tmp_path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "qa.jsonl").write_text('{"id": "a", "question": "q"}\n{"id": 1}\n')
    with pytest.raises(ValueError, match="qa.jsonl:2"):
        load(tmp_path)


@pytest.mark.parametrize("line, why", [
    ('["a", "b"]', "JSON object"),
    ('{"id": "a", "question": 5}', "'question'"),
    ('{"id": "a", "question": "q", "answers": "30 dias"}', "'answers'"),
    ('{"id": "a", "question": "q", "sources": [{"doc": "a.md"}]}', "'sources'"),
    ('{"id": "a", "question": "q", "kind": "trick"}', "'kind'"),
])
def test_a_case_of_the_wrong_shape_is_named_not_scored(tmp_path, line: str, why: str) -> None:
    """A string where a list belongs once scored containment letter by letter."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\ntexto")
    (tmp_path / "qa.jsonl").write_text(line + "\n")
    with pytest.raises(ValueError, match=why):
        load(tmp_path)
    out = subprocess.run([*ATENDE, "eval", "retrieval", "--set", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and "malformed case" in out.stderr and "Traceback" not in out.stderr


def test_eval_retrieval_cli_on_the_demo_set(tmp_path) -> None:
    out = subprocess.run([*ATENDE, "eval", "retrieval", "--set", str(DEMO), "--json",
                          str(tmp_path / "r.json"), "--fit-evidence", str(tmp_path / "e.json")],
                         capture_output=True, text=True, cwd=ROOT,
                         env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"}, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    rows = {(r["method"], r["split"]): r for r in result["rows"]}
    assert set(rows) >= {("lexical", "all"), ("dense", "all"), ("hybrid", "all")}
    hybrid, best = rows["hybrid", "all"], max(rows["lexical", "all"]["ndcg_10"],
                                              rows["dense", "all"]["ndcg_10"])
    assert hybrid["n"] == 22 and hybrid["recall_5"] >= 0.9
    assert hybrid["ndcg_10"] >= best - 0.01  # hybrid is never worse than its best member
    assert len(result["cases"]) == 22 * 3
    assert "nDCG@10" in out.stdout
    # The learned evidence rule is fitted within the budget (3%: none of 22 wrongly refused),
    # written where ATENDE_EVIDENCE_MODEL reads it, and reported beside the floors.
    rules = {c["name"]: c for c in result["calibration"]}
    fitted = rules["learned, fitted at 3%"]
    assert fitted["wrongly_refused"] == 0.0 and fitted["evidence"]["rule"] == "learned"
    rule = Learned.load(tmp_path / "e.json")
    assert rule.threshold == fitted["evidence"]["threshold"]
    # The kind serving ships: it sees a term no passage holds, and serving reads the file.
    assert rule.features == NEAR_MISS_FEATURES and rule.near_miss_threshold is not None
    assert Settings(evidence_model=str(tmp_path / "e.json")).evidence() == rule
    # The demo's out-of-scope questions are asked too: the fitted rule answers fewer of them
    # than the floors calibrated beside it.
    floors = rules["floors, calibrated at 3%"]
    assert fitted["out_of_scope_answered"] < floors["out_of_scope_answered"]
    assert "out of scope wrongly answered" in out.stdout
