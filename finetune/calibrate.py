"""The refusal threshold: chosen on held-out pairs, each asked with and without its answer.

The fine-tuned model's probability of opening the refusal is its own "I don't know" score. The
threshold is the lowest one that wrongly refuses at most a budgeted share of answerable
questions, so it refuses as many unanswerable ones as that budget allows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from finetune.examples import Example
from models.providers.llamacpp import LlamaCppProvider


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
