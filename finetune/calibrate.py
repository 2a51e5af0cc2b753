"""The refusal threshold: chosen on held-out pairs, each asked with and without its answer.

The fine-tuned model's probability of opening the refusal is its own "I don't know" score. The
threshold is the lowest one that wrongly refuses at most a budgeted share of answerable
questions, so it refuses as many unanswerable ones as that budget allows. The held-out pairs are
asked with their own passages, or (``on_retrieval``) as serving asks them: retrieved passages,
the evidence rule first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eval.calibration import asked
from eval.evalset import EvalSet
from finetune.examples import Example
from models.providers.llamacpp import LlamaCppProvider
from rag import evidence, extractive, prompt
from rag.evidence import Rule
from rag.index import KnowledgeBase, Search
from rag.units import SENTENCES


@dataclass(frozen=True)
class Calibration:
    threshold: float
    wrongly_refused: float  # answerable examples at or above the threshold
    unanswerable_refused: float
    answerable: int
    unanswerable: int


def probabilities(llm: LlamaCppProvider, items: Sequence[Example],
                  tick: Callable[[], None] = lambda: None) -> list[tuple[str, float]]:
    """(kind, refusal probability) for each example."""
    out = []
    for ex in items:
        out.append((ex.kind, llm.refusal_probability(ex.messages)))
        tick()
    return out


def choose(scored: Sequence[tuple[str, float]], budget: float = 0.05) -> Calibration:
    """The lowest threshold whose wrong refusals stay within ``budget``."""
    answer = [p for kind, p in scored if kind == "answer"]
    refuse = [p for kind, p in scored if kind == "refuse"]
    if not answer or not refuse:
        raise ValueError("calibration needs answerable and unanswerable examples")
    best = 1.0
    for t in sorted(set(answer + refuse)):
        if sum(p >= t for p in answer) / len(answer) <= budget:
            best = t
            break
    return Calibration(best, sum(p >= best for p in answer) / len(answer),
                       sum(p >= best for p in refuse) / len(refuse), len(answer), len(refuse))


def on_retrieval(llm: LlamaCppProvider, es: EvalSet, kb: KnowledgeBase, collection: str,
                 rule: Rule, top_k: int, how: Search | None = None, sentences: int = 0,
                 terms: float = 0.0,
                 tick: Callable[[], None] = lambda: None,
                 layout: str = SENTENCES) -> list[tuple[str, float]]:
    """(kind, refusal score) of each answerable case asked as serving asks it: the top-k
    retrieved passages, with and without every document that answers it. A question the
    evidence rule refuses scores 1.0: refused whatever the threshold, so the threshold and the
    rule share one budget of wrong refusals."""
    out: list[tuple[str, float]] = []
    for case, found, without in asked(es, kb, collection, how, top_k):
        for kind, hits in (("answer", found), ("refuse", without)):
            if not evidence.enough(case.question, hits, rule, kb, collection):
                out.append((kind, 1.0))
                continue
            shown = extractive.focus_in(kb, collection, case.question, hits, sentences, terms,
                                        layout=layout)
            messages = prompt.build(prompt.DEFAULT_PERSONA, shown, case.question,
                                    count_tokens=llm.count_tokens)
            out.append((kind, llm.refusal_probability(messages)))
        tick()
    return out
