"""Calibrate the answer threshold on the fused score: the same questions asked with and without
the document that answers them (answerable vs unanswerable)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from eval.evalset import EvalSet
from rag.index import KnowledgeBase, Search


@dataclass(frozen=True)
class Rates:
    threshold: float
    wrongly_refused: float  # answerable questions whose best score fell below the threshold
    wrongly_answered: float  # unanswerable questions whose best score reached it


def scores(es: EvalSet, kb: KnowledgeBase, collection: str, how: Search,
           tick: Callable[[], None] = lambda: None) -> tuple[list[float], list[float]]:
    """Best fused score of each answerable question, with and without its document."""
    answerable: list[float] = []
    unanswerable: list[float] = []
    for case in es.cases:
        if case.kind != "in_scope" or not case.sources:
            continue
        for target, exclude in ((answerable, None), (unanswerable, case.sources[0].doc)):
            hits = kb.search(collection, case.question, top_k=1, how=how, exclude_doc=exclude)
            target.append(hits[0].score if hits else 0.0)
        tick()
    return answerable, unanswerable


def rates(answerable: list[float], unanswerable: list[float], threshold: float) -> Rates:
    return Rates(threshold,
                 sum(s < threshold for s in answerable) / max(len(answerable), 1),
                 sum(s >= threshold for s in unanswerable) / max(len(unanswerable), 1))


def best(answerable: list[float], unanswerable: list[float]) -> Rates:
    """The threshold with the fewest mistakes of both kinds together (equal weight)."""
    candidates = sorted(set(answerable) | set(unanswerable) | {0.0})
    return min((rates(answerable, unanswerable, t) for t in candidates),
               key=lambda r: (r.wrongly_refused + r.wrongly_answered, r.wrongly_refused))
