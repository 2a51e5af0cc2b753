"""Embeddings remembered by text: serving embeds the same passage sentences for the evidence
check and again for the focused prompt, and a shop's popular passages on every message."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from rag.embedders import Embedder


class Memo:
    """An embedder that keeps the vectors of the last ``size`` passages and queries it saw
    (an embedding depends on its text alone, so a kept one is the one it would compute)."""

    def __init__(self, inner: Embedder, size: int = 4096) -> None:
        self.inner, self.name, self.dim, self.size = inner, inner.name, inner.dim, size
        self._passages: OrderedDict[str, np.ndarray] = OrderedDict()
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def passages(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            known = {t: v for t in texts if (v := self._get(self._passages, t)) is not None}
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:  # computed outside the lock: other threads' hits need not wait
            fresh = dict(zip(missing, self.inner.passages(missing), strict=True))
            with self._lock:
                for t, v in fresh.items():
                    self._put(self._passages, t, v)
            known |= fresh
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([known[t] for t in texts])

    def query(self, text: str) -> np.ndarray:
        with self._lock:
            v = self._get(self._queries, text)
        if v is None:
            v = self.inner.query(text)
            with self._lock:
                self._put(self._queries, text, v)
        return v.copy()

    @staticmethod
    def _get(kept: OrderedDict[str, np.ndarray], text: str) -> np.ndarray | None:
        v = kept.get(text)
        if v is not None:
            kept.move_to_end(text)
        return v

    def _put(self, kept: OrderedDict[str, np.ndarray], text: str, v: np.ndarray) -> None:
        kept[text] = v
        kept.move_to_end(text)
        while len(kept) > self.size:
            kept.popitem(last=False)
