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

Both can also see the near-miss shape (``near_miss``): "vcs atendem em poços de caldas?" finds
passages about the fibre network, with a fair score and most of its words, yet its most specific
term is in no passage. A learned rule over ``NEAR_MISS_FEATURES`` refuses at a lower threshold
where such a term is missing; floors may veto it outright.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from rag import extractive, lexical
from rag.embedders import Embedder
from rag.index import KnowledgeBase, Passage

Idf = extractive.Idf


# A missing term at least this specific (its idf as a share of that of a term in no passage of
# the collection) is the near-miss shape: in no document at all (1.0), or a typo of a rare one.
NEAR_MISS = 0.9
# A bare number missing counts this much of its idf: customers write their own ("uma tv de 3.200",
# "20 dias de antecedência"). A number before a unit the passages hold after another number
# ("500 mega" where they list 300 and 600 Mega) is a sibling of what is offered, and counts whole.
BARE_NUMBER = 0.6


@dataclass(frozen=True)
class Floors:
    """Least evidence to answer: fused score of the best passage, and coverage; with
    ``near_miss``, a veto on a missing term at least that specific."""

    score: float
    coverage: float
    near_miss: float | None = None

    def refuses(self, s: Signals) -> bool:
        return s.score < self.score or s.coverage < self.coverage or (
            self.near_miss is not None and s.near_miss >= self.near_miss)


@dataclass(frozen=True)
class Signals:
    """What the passages of one search say about answering the question."""

    score: float  # fused score of the best passage
    coverage: float
    weighted_coverage: float  # coverage with each term weighted by its idf
    similarity: float  # of the passages' closest sentence (or piece) to the question
    near_miss: float = 0.0  # how specific the most specific term no passage holds is (0 to 1)

    def row(self, features: Sequence[str] = ()) -> list[float]:
        return [getattr(self, f) for f in features or FEATURES]


FEATURES = ("score", "weighted_coverage", "similarity")  # what Learned mixes by default
NEAR_MISS_FEATURES = (*FEATURES, "near_miss")
KNOWN_FEATURES = (FEATURES, NEAR_MISS_FEATURES)


def coverage(question: str, passages: Sequence[Passage], idf: Idf | None = None) -> float:
    """Most of the question's distinct terms held by one passage (heading path included), each
    term counted once or, with ``idf``, by its weight; a customer's typo of a word the passage
    holds counts as that word ("vizita"), or an informal question whose passage is right there
    would be refused for its spelling."""
    return max(lexical.held(question, [f"{p.heading}\n{p.text}" for p in passages], idf,
                            typos=True), default=0.0)


def measure(question: str, passages: Sequence[Passage]) -> tuple[float, float]:
    """(fused score of the best passage, coverage) of a search result."""
    return (passages[0].score if passages else 0.0), coverage(question, passages)


def signals(question: str, passages: Sequence[Passage], embedder: Embedder, idf: Idf) -> Signals:
    """Every signal of a search result (embeds the passages' sentences)."""
    score, covered = measure(question, passages)
    return Signals(score, covered, coverage(question, passages, idf),
                   extractive.closest(embedder, question, passages),
                   near_miss(question, passages, idf))


def near_miss(question: str, passages: Sequence[Passage], idf: Idf) -> float:
    """How specific the question's most specific term that no passage holds is: its idf as a
    share of that of a term in no passage of the collection (0 where the passages hold every
    one). Chat words, verb forms and the customer's own things never count
    (``lexical.specific_terms``); a word in no document that is one typo from a word the
    collection holds counts as that word ("mensalidadi")."""
    texts = [f"{p.heading}\n{p.text}" for p in passages]
    held = {t for text in texts for t in [*lexical.tokens(text), *lexical.words(text)]}
    offered = {pair for text in texts for pair in lexical.number_units(text)}
    top = idf("")  # no token is empty: the idf of a term the collection lacks
    return max((_specificity(t, idf, top, offered) for t in lexical.specific_terms(question)
                if not _held(t, held, idf, top, offered)), default=0.0)


def _spellings(term: lexical.Term, idf: Idf, top: float) -> set[str]:
    """The stems a term may stand for: its own, or where the collection lacks it, those of the
    words one typo away that the collection holds (none: its own)."""
    if idf(term.stem) < top or len(term.word) < 5 or any(c.isdigit() for c in term.word):
        return {term.stem}
    known = {lexical.stem(v) for v in lexical.one_edit(term.word)} - {term.stem}
    return {k for k in known if idf(k) < top} or {term.stem}


def _held(term: lexical.Term, held: set[str], idf: Idf, top: float,
          offered: set[tuple[str, str]]) -> bool:
    """Whether a passage holds the term (a number before a unit: the two together, as "2 giga"
    is not held by a passage holding "1 Giga" and "2 dias")."""
    if term.unit and any(unit == term.unit for _, unit in offered):
        return (term.word, term.unit) in offered
    return bool(_spellings(term, idf, top) & held) or bool(term.written and term.written in held)


def _specificity(term: lexical.Term, idf: Idf, top: float,
                 offered: set[tuple[str, str]]) -> float:
    """The idf share of a missing term (its least specific spelling); a bare number's counts
    ``BARE_NUMBER`` of it."""
    if term.unit and any(unit == term.unit for _, unit in offered):
        return 1.0  # a sibling of what the passages offer: as specific as it gets
    share = min(idf(s) for s in _spellings(term, idf, top)) / top if top else 0.0
    return share * BARE_NUMBER if any(c.isdigit() for c in term.word) else share


@dataclass(frozen=True)
class Learned:
    """A logistic check over ``features`` (``FEATURES`` or ``NEAR_MISS_FEATURES``),
    standardised: refuse when the score reaches the threshold (the chance, as fitted, that the
    question is unanswerable), or ``near_miss_threshold`` where a missing term is at least
    ``NEAR_MISS`` specific: a near-miss needs less other doubt to be refused."""

    weights: list[float]  # one per feature, then the bias
    mean: list[float]
    scale: list[float]
    threshold: float
    top_k: int  # passages searched per question when fitted; serving must search as many
    fitted_on: str = ""  # the set, split and budget, for whoever reads the file
    features: tuple[str, ...] = FEATURES
    near_miss_threshold: float | None = None

    def unanswerable(self, s: Signals) -> float:
        z = (np.array(s.row(self.features)) - self.mean) / self.scale
        return float(0.5 * (1 + math.tanh((z @ self.weights[:-1] + self.weights[-1]) / 2)))

    def refuses(self, s: Signals) -> bool:
        chance = self.unanswerable(s)
        return chance >= self.threshold or (self.near_miss_threshold is not None and
                                            s.near_miss >= NEAR_MISS and
                                            chance >= self.near_miss_threshold)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Learned:
        """Read a fitted check; one fitted on other features is an error."""
        raw = json.loads(path.read_text())
        features = tuple(raw.pop("features", ()))
        if features not in KNOWN_FEATURES:
            raise ValueError(f"{path}: an evidence model over other features; fit it again")
        rule = cls(**raw, features=features)
        if (len(rule.weights), len(rule.mean), len(rule.scale)) != (len(features) + 1,
                                                                    *[len(features)] * 2):
            raise ValueError(f"{path}: weights, mean and scale do not match the features")
        return rule


Rule = Floors | Learned


def enough(question: str, passages: Sequence[Passage], rule: Rule,
           kb: KnowledgeBase | None = None, collection: str = "") -> bool:
    """Whether the passages are worth asking a model about (a learned rule needs the knowledge
    base they came from: its embedder and idf)."""
    if not passages:
        return False
    if isinstance(rule, Floors) and rule.near_miss is None:  # score and coverage: no idf
        return not rule.refuses(Signals(*measure(question, passages), 0.0, 0.0))
    if kb is None:
        raise ValueError("a learned evidence rule, or a near-miss veto, needs the knowledge "
                         "base searched")
    if isinstance(rule, Floors):  # nothing to embed
        return not rule.refuses(Signals(*measure(question, passages), 0.0, 0.0, near_miss(
            question, passages, kb.idf(collection))))
    return not rule.refuses(signals(question, passages, kb.embedder, kb.idf(collection)))


def fit(answerable: Sequence[Signals], unanswerable: Sequence[Signals], budget: float,
        top_k: int, fitted_on: str = "", features: tuple[str, ...] = FEATURES) -> Learned:
    """The logistic check that refuses the most unanswerable questions while wrongly refusing
    at most ``budget`` of the answerable ones (each searched with ``top_k`` passages)."""
    if not answerable or not unanswerable or not 0 <= budget < 1:
        raise ValueError("fitting needs answerable and unanswerable questions, and a budget "
                         "from 0 to under 1")
    x = np.array([s.row(features) for s in [*answerable, *unanswerable]])
    y = np.r_[np.zeros(len(answerable)), np.ones(len(unanswerable))]
    mean, scale = x.mean(0), np.maximum(x.std(0), 1e-6)  # a constant feature weighs nothing
    w = logistic((x - mean) / scale, y)
    check = Learned(w.tolist(), mean.tolist(), scale.tolist(), 1.0, top_k, fitted_on, features)
    chance = sorted(check.unanswerable(s) for s in answerable)
    # Refuse only above the (allowed + 1)-th highest: ties there are answered, within budget.
    threshold = math.nextafter(chance[-(int(budget * len(chance)) + 1)], math.inf)
    return replace(check, threshold=threshold)


def logistic(x: np.ndarray, y: np.ndarray, steps: int = 4000) -> np.ndarray:
    """Weights (bias last) of a lightly regularised logistic regression on standardised
    features, by gradient descent: a few features, so no solver library is needed."""
    xb = np.c_[x, np.ones(len(x))]
    w = np.zeros(xb.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-xb @ w))
        w -= 0.3 * (xb.T @ (p - y) + np.r_[w[:-1], 0]) / len(y)
    return w
