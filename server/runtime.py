"""The heavy parts one process shares: the models, the knowledge base, the HTTP client."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from qdrant_client import QdrantClient

from models import registry
from models.base import ModelConfigError, Provider
from models.bundled import bundled_gguf
from models.spec import ModelSpec
from rag.edge import EdgeClient
from rag.embedders import load_embedder
from rag.index import KnowledgeBase
from server.settings import Settings

LOCAL = "local"


@dataclass
class Runtime:
    settings: Settings
    models: dict[str, tuple[ModelSpec, Provider]]
    kb: KnowledgeBase
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=15.0))

    @property
    def llm(self) -> Provider:
        """The default model."""
        return self.models[self.settings.llm_default][1]

    def chain(self, names: list[str]) -> list[tuple[ModelSpec, Provider]]:
        """The configured models of these names, in order, each once."""
        unknown = [n for n in names if n not in self.models]
        if unknown:
            raise ModelConfigError(f"unknown model {unknown[0]!r}; configured: "
                                   f"{', '.join(sorted(self.models))}")
        return [self.models[n] for n in dict.fromkeys(names)]

    def close(self) -> None:
        self.http.close()
        self.kb.client.close()


_current: Runtime | None = None


class StoreBusy(RuntimeError):
    """The embedded vector store's folder is held by another process (a running server)."""


def open_kb(settings: Settings) -> KnowledgeBase:
    """The knowledge base: a Qdrant server if configured, else the embedded store."""
    client: QdrantClient | EdgeClient
    if settings.qdrant_url:
        client = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key)
    else:
        settings.ensure_dirs()
        edge = settings.vector_store == "edge"
        folder = settings.data_dir / ("qdrant-edge" if edge else "qdrant")
        try:
            client = EdgeClient(str(folder)) if edge else QdrantClient(path=str(folder))
        except RuntimeError as exc:  # an embedded store locks its folder against a 2nd process
            raise StoreBusy(f"the vector store in {folder} is in use by another process "
                            f"(is `atende serve` running?): {exc}") from None
    embedder = load_embedder(settings.embedder, settings.embedder_model, settings.embedder_threads)
    return KnowledgeBase(client, embedder)


def model_specs(settings: Settings) -> list[ModelSpec]:
    """Every configured model: the local one first (its GGUF resolved), then ATENDE_MODELS."""
    local = settings.local_model()
    if local.path is None:
        local = local.model_copy(update={"path": bundled_gguf(settings.data_dir / "models")})
    specs = [local, *settings.models]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ModelConfigError(f"ATENDE_MODELS: model names must be unique (and not "
                               f"{LOCAL!r}); got {names}")
    return specs


def open_models(settings: Settings) -> dict[str, tuple[ModelSpec, Provider]]:
    """Load every configured model; one that cannot load stops start-up, naming the setting."""
    models = {spec.name: (spec, registry.create(spec)) for spec in model_specs(settings)}
    for name in [settings.llm_default, *settings.llm_fallback]:
        if name not in models:
            raise ModelConfigError(f"ATENDE_LLM_DEFAULT / ATENDE_LLM_FALLBACK: unknown model "
                                   f"{name!r}; configured: {', '.join(models)}")
    return models


def start(settings: Settings) -> Runtime:
    """Load everything; a model or store that cannot load raises with the setting to fix."""
    global _current
    models = open_models(settings)
    _current = Runtime(settings, models, open_kb(settings))
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
