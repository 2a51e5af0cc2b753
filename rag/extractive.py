"""The extractive answer: no LLM, the passage sentence most similar to the question."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from rag.embedders import Embedder
from rag.index import Passage

_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\n+")
MAX_WORDS = 60


def sentences(text: str) -> list[str]:
    """Sentences of a passage; table rows and list items count as sentences."""
    out = []
    for s in _SENTENCE.split(text):
        s = s.replace("**", "").replace("__", "").strip(" \t|-*#")
        if len(s.split()) >= 3 and not set(s) <= set("-|: "):
            out.append(s)
    return out


def best_sentence(embedder: Embedder, question: str, passages: Sequence[Passage]) -> str | None:
    """The sentence of the passages closest to the question, cut to MAX_WORDS words."""
    candidates = [s for p in passages for s in sentences(p.text)]
    if not candidates:
        return None
    scores = embedder.passages(candidates) @ embedder.query(question)
    best = candidates[int(np.argmax(scores))]
    words = best.split()
    return best if len(words) <= MAX_WORDS else " ".join(words[:MAX_WORDS]) + "…"
