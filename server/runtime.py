"""The heavy parts one process shares: the model, the knowledge base, the HTTP client."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from qdrant_client import QdrantClient

from models.base import Provider
from models.bundled import bundled_gguf
from models.llamacpp import LlamaCppProvider
from rag.embedders import load_embedder
from rag.index import KnowledgeBase
from server.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    llm: Provider
    kb: KnowledgeBase
    http: httpx.Client

    def close(self) -> None:
        self.http.close()
        self.kb.client.close()


_current: Runtime | None = None


def open_kb(settings: Settings) -> KnowledgeBase:
    """The knowledge base: Qdrant server if configured, else local mode in the data folder."""
    if settings.qdrant_url:
        client = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key)
    else:
        settings.ensure_dirs()
        try:
            client = QdrantClient(path=str(settings.data_dir / "qdrant"))
        except RuntimeError as exc:  # local mode locks its folder against a second process
            raise RuntimeError(f"the vector store in {settings.data_dir / 'qdrant'} is in use by "
                               f"another process (is `atende serve` running?): {exc}") from None
    embedder = load_embedder(settings.embedder, settings.embedder_model, settings.embedder_threads)
    return KnowledgeBase(client, embedder)


def open_llm(settings: Settings) -> Provider:
    """The serving model: the configured GGUF, or the bundled Gemma."""
    path = settings.llm_model_path or bundled_gguf(settings.data_dir / "models")
    return LlamaCppProvider(path, n_ctx=settings.llm_context, n_threads=settings.llm_threads,
                            n_gpu_layers=settings.llm_gpu_layers)


def start(settings: Settings) -> Runtime:
    """Load everything; a model or store that cannot load raises with the setting to fix."""
    global _current
    llm = open_llm(settings)
    _current = Runtime(settings, llm, open_kb(settings), httpx.Client(timeout=15.0))
    return _current


def current() -> Runtime:
    """The runtime this process started."""
    if _current is None:
        raise RuntimeError("runtime not started")
    return _current


def stop() -> None:
    global _current
    if _current is not None:
        _current.close()
        _current = None
