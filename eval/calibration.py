"""Calibrate the evidence rule (``rag.evidence``): the same questions asked with and without
every document that answers them (answerable vs unanswerable)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from eval.evalset import Case, EvalSet
from rag import evidence, lexical
from rag.evidence import NEAR_MISS, Floors, Learned, Rule, Signals
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


class DocTerms:
    """The terms of each passage of a collection, by document: the idf of the collection as it
    would be without some documents. A question asked without its documents must find its
    specific terms in no document, as it would where the company never wrote them; counted
    over the whole collection they would look common enough to be missed for a typo's sake."""

    def __init__(self, kb: KnowledgeBase, collection: str) -> None:
        self.by_doc: dict[str, list[set[str]]] = {}
        offset = None
        while True:
            points, offset = kb.client.scroll(collection, limit=1000, offset=offset,
                                              with_payload=["doc", "heading", "text"])
            for p in points:
                payload = p.payload or {}
                self.by_doc.setdefault(payload["doc"], []).append(set(lexical.tokens(
                    f"{payload.get('heading', '')}\n{payload.get('text', '')}")))
            if offset is None:
                break

    def idf(self, without: Sequence[str] = ()) -> evidence.Idf:
        df: Counter[str] = Counter()
        kept = [terms for doc, passages in self.by_doc.items() if doc not in without
                for terms in passages]
        for terms in kept:
            df.update(terms)
        return lexical.idf(df, len(kept))


def measures(es: EvalSet, kb: KnowledgeBase, collection: str, how: Search, top_k: int = 4,
             tick: Callable[[], None] = lambda: None) -> tuple[list[Signals], list[Signals]]:
    """Evidence of each answerable question, with and without the documents that answer it
    (then with the idf of the collection without them)."""
    answerable: list[Signals] = []
    unanswerable: list[Signals] = []
    terms = DocTerms(kb, collection)
    idf = terms.idf()
    for case, found, without in asked(es, kb, collection, how, top_k):
        answerable.append(evidence.signals(case.question, found, kb.embedder, idf))
        unanswerable.append(evidence.signals(case.question, without, kb.embedder,
                                             terms.idf(es.answering_docs(case))))
        tick()
    return answerable, unanswerable


def out_of_scope(es: EvalSet, kb: KnowledgeBase, collection: str, how: Search | None = None,
                 top_k: int = 4) -> list[Signals]:
    """Evidence of each out-of-scope case, asked as is, with the collection's idf as serving
    reads it: what a rule must refuse too, and where a near-miss shows (a term no passage
    holds)."""
    idf = kb.idf(collection)
    return [evidence.signals(c.question, kb.search(collection, c.question, top_k=top_k, how=how),
                             kb.embedder, idf) for c in es.cases if c.kind == "out_of_scope"]


def fit_near_miss(answerable: Sequence[Signals], unanswerable: Sequence[Signals],
                  outside: Sequence[Signals], budget: float, top_k: int,
                  fitted_on: str = "") -> Learned:
    """The rule serving ships (``NEAR_MISS_FEATURES``, a lower threshold where a term at least
    ``NEAR_MISS`` specific is missing), fitted on one set's questions: the logistic mix on the
    answerable against those asked without their documents and the out-of-scope ones, then its
    two thresholds (``choose``), the near-misses being the out-of-scope questions of that shape.
    The corpus's shipped rule was fitted on some businesses and its thresholds chosen on others;
    a company fitting on its own train split checks the result on its dev split."""
    refused = [*unanswerable, *outside]
    rule = evidence.fit(answerable, refused, budget, top_k, fitted_on,
                        features=evidence.NEAR_MISS_FEATURES)
    near = [s for s in outside if s.near_miss >= NEAR_MISS]
    return choose(rule, answerable, refused, near, budget)


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


def choose(rule: Learned, answerable: Sequence[Signals], unanswerable: Sequence[Signals],
           near_misses: Sequence[Signals], budget: float, veto: bool = True) -> Learned:
    """The rule with the thresholds (one, and a lower one where a near-miss term is missing)
    that refuse the largest share of unanswerable questions plus the largest share of near-misses
    while wrongly refusing at most ``budget`` of the answerable ones. Meant for questions of
    businesses the rule was not fitted on. Without ``veto``, the one threshold only."""
    groups = [_chances(rule, g) for g in (answerable, unanswerable, near_misses)]
    every = np.concatenate([p for p, _ in groups])
    candidates = np.r_[np.unique(np.quantile(every, np.linspace(0, 1, 201))), np.inf]
    best: tuple[float, float, float] = (-1.0, np.inf, np.inf)
    for t in candidates:
        for low in candidates[candidates <= t] if veto else [np.inf]:
            shares = [((p >= t) | (near & (p >= low))).mean() if len(p) else 0.0
                      for p, near in groups]
            if shares[0] <= budget and shares[1] + shares[2] > best[0]:
                best = (shares[1] + shares[2], float(t), float(low))
    return replace(rule, threshold=best[1], near_miss_threshold=best[2] if veto else None)


@dataclass(frozen=True)
class Joint:
    """The evidence rule and a model's refusal threshold, chosen together: one budget of wrong
    refusals shared by the step before the model and the model's own "I don't know"."""

    rule: Learned
    model_threshold: float


def choose_with_model(rule: Learned, answerable: Sequence[tuple[Signals, float]],
                      unanswerable: Sequence[tuple[Signals, float]],
                      near_misses: Sequence[tuple[Signals, float]], budget: float) -> Joint:
    """As ``choose``, with the model's refusal probability of each question (asked as serving
    asks it) beside its signals: the rule's two thresholds and the model's threshold that
    refuse the largest share of unanswerable questions plus of near-misses while the two
    together wrongly refuse at most ``budget`` of the answerable ones. A question either
    refuses is refused, so a rule that refuses more lets the model refuse less, and the other
    way round; chosen apart (each within the whole budget) they would overspend it."""
    groups = [(*_chances(rule, [s for s, _ in g]), np.array([p for _, p in g])) for g in
              (answerable, unanswerable, near_misses)]
    every = np.concatenate([c for c, _, _ in groups])
    candidates = np.r_[np.unique(np.quantile(every, np.linspace(0, 1, 101))), np.inf]
    probs = np.concatenate([p for _, _, p in groups])
    levels = np.r_[np.unique(np.quantile(probs, np.linspace(0, 1, 101))), np.inf]
    best: tuple[float, float, float, float] = (-1.0, np.inf, np.inf, np.inf)
    for t in candidates:
        for low in candidates[candidates <= t]:
            by_rule = [(c >= t) | (near & (c >= low)) for c, near, _ in groups]
            # The lowest model threshold the budget still allows refuses the most.
            spare = [m for m in levels
                     if (by_rule[0] | (groups[0][2] >= m)).mean() <= budget]
            if not spare:
                continue
            m = float(min(spare))
            shares = [(r | (p >= m)).mean() if len(p) else 0.0
                      for r, (_, _, p) in zip(by_rule, groups, strict=True)]
            if shares[1] + shares[2] > best[0]:
                best = (shares[1] + shares[2], float(t), float(low), m)
    return Joint(replace(rule, threshold=best[1], near_miss_threshold=best[2]), best[3])


def _chances(rule: Learned, group: Sequence[Signals]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([rule.unanswerable(s) for s in group]),
            np.array([s.near_miss >= NEAR_MISS for s in group], dtype=bool))
