"""The answer corpus (corpus/atende-negocios): what training and the report rely on holds.

A source passage that is not in its document as Atende reads it makes retrieval look wrong; a
near-miss term that some document holds makes a right answer count as a failure to refuse; a
business in two splits leaks what training saw into the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.evalset import load
from rag.lexical import fold
from rag.parsing import read_text

ROOT = Path(__file__).resolve().parent.parent / "corpus" / "atende-negocios"
SPLITS = json.loads((ROOT / "splits.json").read_text(encoding="utf-8"))
BUSINESSES = sorted(p.name for p in ROOT.iterdir() if p.is_dir())


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_every_business_is_in_exactly_one_split_and_each_split_has_several() -> None:
    listed = [b for names in SPLITS.values() for b in names]
    assert sorted(listed) == BUSINESSES and len(set(listed)) == len(listed)
    assert len(BUSINESSES) >= 15
    assert {k: len(v) >= 4 for k, v in SPLITS.items()} == {"train": True, "dev": True,
                                                            "test": True}


@pytest.mark.parametrize("business", BUSINESSES)
def test_a_business_is_a_whole_eval_set(business: str) -> None:
    split = next(k for k, v in SPLITS.items() if business in v)
    kept = load(ROOT / business)
    raw = [json.loads(line) for line in (ROOT / business / "qa.jsonl").read_text(
        encoding="utf-8").splitlines() if line.strip()]
    texts = {p.name: _flat(read_text(p)) for p in kept.docs}
    everything = fold(" ".join(texts.values()))

    assert {c.split for c in kept.cases} == {split}
    assert len({c.id for c in kept.cases}) == len(kept.cases) >= 40
    assert {p.suffix for p in kept.docs} & {".html", ".pdf", ".docx"}
    missing = [(c.id, s.text) for c in kept.cases for s in c.sources
               if _flat(s.text) not in texts[s.doc]]
    assert missing == []
    kinds = [c.kind for c in kept.cases]
    assert kinds.count("in_scope") >= 30 and kinds.count("injection") >= 4
    near = [c for c in raw if c.get("near_miss")]
    assert len(near) >= 6 and all(c["kind"] == "out_of_scope" for c in near)
    assert [c["near_miss"] for c in near if fold(c["near_miss"]) in everything] == []
    polarity = [c["polarity"] for c in raw if "polarity" in c]
    assert set(polarity) == {"sim", "não"} and len(polarity) >= 6
    assert all(c.answers and c.sources for c in kept.cases if c.kind == "in_scope")
