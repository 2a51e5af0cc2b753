"""Can the retrieved passages answer the question? Decided before any model is called.

Two signals, each with a calibrated floor (``atende eval retrieval`` measures both): the fused
score of the best passage, and coverage, the share of the question's own terms (stemmed,
accents folded, stop words dropped) that the best-covering passage holds. A question whose
document is missing from the knowledge base still finds passages with a fair fused score, since
DBSF normalises per query, but rarely one that holds what it names ("trancamento", "estágio").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag import lexical
from rag.index import Passage


@dataclass(frozen=True)
class Floors:
    """Least evidence to answer: fused score of the best passage, and coverage."""

    score: float
    coverage: float


def coverage(question: str, passages: Sequence[Passage]) -> float:
    """Most of the question's distinct terms held by one passage (heading path included)."""
    terms = set(lexical.tokens(question, query=True))
    if not terms or not passages:
        return 0.0
    held = max(len(terms & set(lexical.tokens(f"{p.heading}\n{p.text}"))) for p in passages)
    return held / len(terms)


def measure(question: str, passages: Sequence[Passage]) -> tuple[float, float]:
    """(fused score of the best passage, coverage) of a search result."""
    return (passages[0].score if passages else 0.0), coverage(question, passages)


def enough(question: str, passages: Sequence[Passage], floors: Floors) -> bool:
    """Whether the passages are worth asking a model about."""
    score, covered = measure(question, passages)
    return bool(passages) and score >= floors.score and covered >= floors.coverage
