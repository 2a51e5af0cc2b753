"""Retrieval eval: ingest a set into a scratch collection, rank every question, score it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from eval import metrics
from eval.evalset import Case, EvalSet, relevant
from rag.index import KnowledgeBase, Search
from rag.parsing import read_text

K = 10
METHODS = {"lexical": Search(mode="lexical"), "dense": Search(mode="dense"),
           "hybrid": Search()}


@dataclass
class Row:
    method: str
    split: str
    n: int
    recall_1: float
    recall_5: float
    mrr_10: float
    ndcg_10: float
    p50_ms: float
    p95_ms: float


@dataclass
class Scored:
    case: str
    method: str
    split: str
    rels: list[bool]
    total_relevant: int
    ms: float


def ingest(es: EvalSet, kb: KnowledgeBase, collection: str,
           tick: Callable[[], None] = lambda: None) -> int:
    """Put the set's documents into a collection; returns how many passages it holds."""
    for path in es.docs:
        kb.ingest(collection, path.name, read_text(path))
        tick()
    return sum(kb.documents(collection).values())


def _chunks(kb: KnowledgeBase, collection: str) -> list[tuple[str, str]]:
    out, offset = [], None
    while True:
        points, offset = kb.client.scroll(collection, limit=1000, offset=offset,
                                          with_payload=["doc", "text"])
        out += [(p.payload["doc"], p.payload["text"]) for p in points if p.payload]
        if offset is None:
            return out


def score(es: EvalSet, kb: KnowledgeBase, collection: str, methods: dict[str, Search],
          tick: Callable[[], None] = lambda: None) -> list[Scored]:
    """Rank every answerable question with every method."""
    chunks = _chunks(kb, collection)
    out = []
    cases: list[Case] = [c for c in es.cases if c.kind == "in_scope" and c.sources]
    for case in cases:
        src = case.sources[0]
        total = sum(relevant(doc, text, src) for doc, text in chunks)
        for name, how in methods.items():
            t = time.perf_counter()
            hits = kb.search(collection, case.question, top_k=K, how=how)
            ms = (time.perf_counter() - t) * 1000
            out.append(Scored(case.id, name, case.split or "-",
                              [relevant(h.doc, h.text, src) for h in hits], total, ms))
        tick()
    return out


def summarize(scored: list[Scored]) -> list[Row]:
    """One row per method and split, plus 'all'."""
    rows = []
    methods = list(dict.fromkeys(s.method for s in scored))
    splits = ["all", *sorted({s.split for s in scored} - {"-"})]
    for method in methods:
        for split in splits:
            group = [s for s in scored if s.method == method and split in ("all", s.split)]
            if not group:
                continue
            n = len(group)
            lat = [s.ms for s in group]
            rows.append(Row(
                method, split, n,
                recall_1=sum(metrics.recall_at(s.rels, 1) for s in group) / n,
                recall_5=sum(metrics.recall_at(s.rels, 5) for s in group) / n,
                mrr_10=sum(metrics.mrr_at(s.rels, K) for s in group) / n,
                ndcg_10=sum(metrics.ndcg_at(s.rels, K, s.total_relevant) for s in group) / n,
                p50_ms=metrics.percentile(lat, 50), p95_ms=metrics.percentile(lat, 95)))
    return rows


def as_json(rows: list[Row], scored: list[Scored], **meta: object) -> dict[str, object]:
    return {**meta, "rows": [asdict(r) for r in rows],
            "cases": [asdict(s) for s in scored]}
