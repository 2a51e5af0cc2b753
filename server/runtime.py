"""The heavy parts one process shares: the models, the knowledge base, the HTTP client."""

from __future__ import annotations

import logging
import threading
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
log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    models: dict[str, tuple[ModelSpec, Provider]]
    kb: KnowledgeBase
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=15.0))
    serving: int | None = None  # the model promotion the local model reflects
    follow_promotions: bool = False  # swap the local model when a version is promoted
    _swap: threading.Lock = field(default_factory=threading.Lock)

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

    def sync_local(self) -> None:
        """Serve the latest promoted version of the local model; a promotion or rollback (from
        the CLI or another process) takes effect here without a restart."""
        if not self.follow_promotions:
            return
        from server.db import sessions_for
        from server.services import model_versions

        sessions = sessions_for(self.settings.sqlalchemy_url)
        with sessions() as s:
            last = model_versions.last_promotion(s)
            if (last.id if last else None) == self.serving:
                return
        with self._swap:  # one swap at a time; read again what serves, as another may have run
            with sessions() as s:
                last = model_versions.last_promotion(s)
                if (last.id if last else None) == self.serving:
                    return
                version = model_versions.serving(s)
            spec = model_versions.spec_for(version, local_spec(self.settings),
                                           self.settings.data_dir)
            try:
                provider = registry.create(spec)
            except ModelConfigError as exc:  # keep serving what works; say why, once
                log.error("cannot serve model version %s, keeping the current one: %s",
                          version.name if version else "base", exc)
            else:
                _, old = self.models[LOCAL]
                self.models[LOCAL] = (spec, provider)
                # Its memory goes as soon as the replies it is writing end (a turn that took it
                # before the swap still finishes on it); dropping the reference alone frees
                # nothing until the garbage collector runs.
                old.close()
            self.serving = last.id if last else None

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


def local_spec(settings: Settings) -> ModelSpec:
    """The local model as the settings describe it, the bundled GGUF filled in."""
    local = settings.local_model()
    if local.path is None:
        local = local.model_copy(update={"path": bundled_gguf(settings.data_dir / "models")})
    return local


def model_specs(settings: Settings) -> list[ModelSpec]:
    """Every configured model: the local one first (its GGUF resolved), then ATENDE_MODELS."""
    specs = [local_spec(settings), *settings.models]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ModelConfigError(f"ATENDE_MODELS: model names must be unique (and not "
                               f"{LOCAL!r}); got {names}")
    return specs


def serving_spec(settings: Settings) -> tuple[ModelSpec, int | None]:
    """The local model's spec with the promoted version applied, and that promotion's id.

    A new database serves the bundled default adapter when the bundled base is in use.
    """
    from server.db import migrate, sessions_for
    from server.services import model_versions

    local = local_spec(settings)
    migrate(settings.sqlalchemy_url)
    sessions = sessions_for(settings.sqlalchemy_url)
    if local.path is not None:
        model_versions.ensure_default(sessions, local.path, root=settings.data_dir)
    with sessions() as s:
        last = model_versions.last_promotion(s)
        return (model_versions.spec_for(model_versions.serving(s), local, settings.data_dir),
                last.id if last else None)


def open_models(settings: Settings,
                local: ModelSpec | None = None) -> dict[str, tuple[ModelSpec, Provider]]:
    """Load every configured model; one that cannot load stops start-up, naming the setting."""
    specs = model_specs(settings)
    if local is not None:
        specs[0] = local
    models = {spec.name: (spec, registry.create(spec)) for spec in specs}
    for name in [settings.llm_default, *settings.llm_fallback]:
        if name not in models:
            raise ModelConfigError(f"ATENDE_LLM_DEFAULT / ATENDE_LLM_FALLBACK: unknown model "
                                   f"{name!r}; configured: {', '.join(models)}")
    return models


def start(settings: Settings) -> Runtime:
    """Load everything; a model or store that cannot load raises with the setting to fix."""
    global _current
    local, promotion = serving_spec(settings)
    models = open_models(settings, local)
    _current = Runtime(settings, models, open_kb(settings), serving=promotion,
                       follow_promotions=True)
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
