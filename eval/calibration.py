"""Calibrate the evidence rule (``rag.evidence``): the same questions asked with and without
every document that answers them (answerable vs unanswerable)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from eval.evalset import Case, EvalSet
from rag import evidence
from rag.evidence import Floors, Rule, Signals
from rag.index import KnowledgeBase, Passage, Search


@dataclass(frozen=True)
class Rates:
    rule: Rule
    wrongly_refused: float  # answerable questions refused for too little evidence
    wrongly_answered: float  # unanswerable questions the rule let through


def asked(es: EvalSet, kb: KnowledgeBase, collection: str, how: Search | None = None,
          top_k: int = 4) -> Iterator[tuple[Case, list[Passage], list[Passage]]]:
    """Each answerable case with its passages, and with those found without every document
    that answers it (what the unanswerable version of the question gets)."""
    for case in es.cases:
        if case.kind != "in_scope" or not case.sources:
            continue
        yield (case,
               kb.search(collection, case.question, top_k=top_k, how=how),
               kb.search(collection, case.question, top_k=top_k, how=how,
                         exclude_docs=es.answering_docs(case)))


def measures(es: EvalSet, kb: KnowledgeBase, collection: str, how: Search, top_k: int = 4,
             tick: Callable[[], None] = lambda: None) -> tuple[list[Signals], list[Signals]]:
    """Evidence of each answerable question, with and without the documents that answer it."""
    answerable: list[Signals] = []
    unanswerable: list[Signals] = []
    idf = kb.idf(collection)
    for case, found, without in asked(es, kb, collection, how, top_k):
        answerable.append(evidence.signals(case.question, found, kb.embedder, idf))
        unanswerable.append(evidence.signals(case.question, without, kb.embedder, idf))
        tick()
    return answerable, unanswerable


def rates(answerable: list[Signals], unanswerable: list[Signals], rule: Rule) -> Rates:
    return Rates(rule, sum(map(rule.refuses, answerable)) / max(len(answerable), 1),
                 sum(not rule.refuses(s) for s in unanswerable) / max(len(unanswerable), 1))


def best(answerable: list[Signals], unanswerable: list[Signals], budget: float = 0.03) -> Rates:
    """The floors that answer the fewest unanswerable questions while wrongly refusing at most
    ``budget`` of the answerable ones (ties: the fewest wrong refusals)."""
    allowed = int(budget * len(answerable))
    fits = []
    for c in sorted({0.0} | {s.coverage for s in answerable}):
        left = allowed - sum(s.coverage < c for s in answerable)
        if left < 0:
            break
        # The highest score floor that refuses at most `left` more answerable questions.
        kept = sorted(s.score for s in answerable if s.coverage >= c)
        floor = kept[left] if left < len(kept) else float("inf")
        fits.append(rates(answerable, unanswerable, Floors(floor, c)))
    return min(fits, key=lambda r: (r.wrongly_answered, r.wrongly_refused))
