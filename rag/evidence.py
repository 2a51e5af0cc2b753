"""Can the retrieved passages answer the question? Decided before any model is called.

Two rules, both calibrated on questions asked with and without the documents that answer them
(``atende eval retrieval``):

- ``Floors`` (the default): a floor on the fused score of the best passage and one on coverage,
  the share of the question's own terms (stemmed, accents folded, stop words dropped) that the
  best-covering passage holds. A question whose document is missing still finds passages with a
  fair fused score, since DBSF normalises per query, but rarely one that holds what it names.
- ``Learned``: a logistic mix of the fused score, coverage weighted by how rare each term is in
  the knowledge base, and the similarity of the passages' closest sentence to the question. A
  missing rare term ("trancamento") says more than a missing common one ("curso"). Fitted on a
  set's train questions (``--fit-evidence``) and used when ``ATENDE_EVIDENCE_MODEL`` names it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rag import extractive, lexical
from rag.embedders import Embedder
from rag.index import KnowledgeBase, Passage

Idf = extractive.Idf


@dataclass(frozen=True)
class Floors:
    """Least evidence to answer: fused score of the best passage, and coverage."""

    score: float
    coverage: float

    def refuses(self, s: Signals) -> bool:
        return s.score < self.score or s.coverage < self.coverage


@dataclass(frozen=True)
class Signals:
    """What the passages of one search say about answering the question."""

    score: float  # fused score of the best passage
    coverage: float
    weighted_coverage: float  # coverage with each term weighted by its idf
    similarity: float  # of the passages' closest sentence (or piece) to the question

    def row(self) -> list[float]:
        return [self.score, self.weighted_coverage, self.similarity]


FEATURES = ("score", "weighted_coverage", "similarity")  # what Learned mixes, in Signals.row order


def coverage(question: str, passages: Sequence[Passage], idf: Idf | None = None) -> float:
    """Most of the question's distinct terms held by one passage (heading path included), each
    term counted once or, with ``idf``, by its weight."""
    return max(lexical.held(question, [f"{p.heading}\n{p.text}" for p in passages], idf),
               default=0.0)


def measure(question: str, passages: Sequence[Passage]) -> tuple[float, float]:
    """(fused score of the best passage, coverage) of a search result."""
    return (passages[0].score if passages else 0.0), coverage(question, passages)


def signals(question: str, passages: Sequence[Passage], embedder: Embedder, idf: Idf) -> Signals:
    """Every signal of a search result (embeds the passages' sentences)."""
    score, covered = measure(question, passages)
    return Signals(score, covered, coverage(question, passages, idf),
                   extractive.closest(embedder, question, passages))


@dataclass(frozen=True)
class Learned:
    """A logistic check over ``FEATURES``, standardised: refuse when the score reaches the
    threshold (the chance, as fitted, that the question is unanswerable)."""

    weights: list[float]  # one per feature, then the bias
    mean: list[float]
    scale: list[float]
    threshold: float
    top_k: int  # passages searched per question when fitted; serving must search as many
    fitted_on: str = ""  # the set, split and budget, for whoever reads the file

    def unanswerable(self, s: Signals) -> float:
        z = (np.array(s.row()) - self.mean) / self.scale
        return float(0.5 * (1 + math.tanh((z @ self.weights[:-1] + self.weights[-1]) / 2)))

    def refuses(self, s: Signals) -> bool:
        return self.unanswerable(s) >= self.threshold

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"features": FEATURES, **asdict(self)}, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Learned:
        """Read a fitted check; one fitted on other features is an error."""
        raw = json.loads(path.read_text())
        if tuple(raw.pop("features", ())) != FEATURES:
            raise ValueError(f"{path}: an evidence model over other features; fit it again")
        rule = cls(**raw)
        if (len(rule.weights), len(rule.mean), len(rule.scale)) != (len(FEATURES) + 1,
                                                                    *[len(FEATURES)] * 2):
            raise ValueError(f"{path}: weights, mean and scale do not match the features")
        return rule


Rule = Floors | Learned


def enough(question: str, passages: Sequence[Passage], rule: Rule,
           kb: KnowledgeBase | None = None, collection: str = "") -> bool:
    """Whether the passages are worth asking a model about (a learned rule needs the knowledge
    base they came from: its embedder and idf)."""
    if not passages:
        return False
    if isinstance(rule, Floors):  # the floors read score and coverage only: nothing to embed
        return not rule.refuses(Signals(*measure(question, passages), 0.0, 0.0))
    if kb is None:
        raise ValueError("a learned evidence rule needs the knowledge base searched")
    return not rule.refuses(signals(question, passages, kb.embedder, kb.idf(collection)))


def fit(answerable: Sequence[Signals], unanswerable: Sequence[Signals], budget: float,
        top_k: int, fitted_on: str = "") -> Learned:
    """The logistic check that refuses the most unanswerable questions while wrongly refusing
    at most ``budget`` of the answerable ones (each searched with ``top_k`` passages)."""
    if not answerable or not unanswerable or not 0 <= budget < 1:
        raise ValueError("fitting needs answerable and unanswerable questions, and a budget "
                         "from 0 to under 1")
    x = np.array([s.row() for s in [*answerable, *unanswerable]])
    y = np.r_[np.zeros(len(answerable)), np.ones(len(unanswerable))]
    mean, scale = x.mean(0), np.maximum(x.std(0), 1e-6)  # a constant feature weighs nothing
    w = logistic((x - mean) / scale, y)
    check = Learned(w.tolist(), mean.tolist(), scale.tolist(), 1.0, top_k, fitted_on)
    chance = sorted(check.unanswerable(s) for s in answerable)
    # Refuse only above the (allowed + 1)-th highest: ties there are answered, within budget.
    threshold = math.nextafter(chance[-(int(budget * len(chance)) + 1)], math.inf)
    return Learned(check.weights, check.mean, check.scale, threshold, top_k, fitted_on)


def logistic(x: np.ndarray, y: np.ndarray, steps: int = 4000) -> np.ndarray:
    """Weights (bias last) of a lightly regularised logistic regression on standardised
    features, by gradient descent: a few features, so no solver library is needed."""
    xb = np.c_[x, np.ones(len(x))]
    w = np.zeros(xb.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-xb @ w))
        w -= 0.3 * (xb.T @ (p - y) + np.r_[w[:-1], 0]) / len(y)
    return w
