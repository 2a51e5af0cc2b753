"""Qdrant Edge (Qdrant's in-process engine, in Rust) behind the part of ``QdrantClient`` that the
knowledge base uses, so the same code runs embedded or against a Qdrant server.

Why: Qdrant's Python local mode scores sparse vectors in Python, point by point (hybrid search
p95 227 ms at 10,000 passages here); Edge runs the same query model (named dense and sparse
vectors, IDF modifier, prefetch, DBSF and RRF fusion) natively (p95 17 ms). One shard folder per
collection, beside a ``meta.json`` holding the collection's metadata.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import qdrant_edge as E
from qdrant_client import models as qm  # qdrant's request types (not our models package)

_DISTANCE = {qm.Distance.COSINE: E.Distance.Cosine, qm.Distance.DOT: E.Distance.Dot,
             qm.Distance.EUCLID: E.Distance.Euclid}


@dataclass
class _Hit:
    id: str
    payload: dict[str, Any] | None
    score: float = 0.0
    vector: Any = None


def _filter(flt: qm.Filter | None) -> E.Filter | None:
    """The knowledge base filters on one keyword field; that is what is translated."""
    if flt is None:
        return None

    def conds(items: Any) -> list[Any] | None:
        if not items:
            return None
        out = []
        for c in items:
            if not isinstance(c, qm.FieldCondition) or not isinstance(c.match,
                                                                          qm.MatchValue):
                raise NotImplementedError(f"edge store: unsupported condition {c!r}")
            out.append(E.FieldCondition(key=c.key, match=E.MatchValue(c.match.value)))
        return out

    return E.Filter(must=conds(flt.must), must_not=conds(flt.must_not))


def _vector(v: Any) -> Any:
    if isinstance(v, qm.SparseVector):
        return E.SparseVector(indices=list(v.indices), values=list(v.values))
    if isinstance(v, dict):
        return {k: _vector(x) for k, x in v.items()}
    return v


def _from_edge_vector(v: Any) -> Any:
    if isinstance(v, E.SparseVector):
        return qm.SparseVector(indices=list(v.indices), values=list(v.values))
    if isinstance(v, dict):
        return {k: _from_edge_vector(x) for k, x in v.items()}
    return v


def _payload_sel(with_payload: Any) -> Any:
    return with_payload if isinstance(with_payload, bool | list) else True


class EdgeClient:
    """Collections as Qdrant Edge shards under one folder."""

    def __init__(self, path: str) -> None:
        self.root = Path(path)
        self.root.mkdir(parents=True, exist_ok=True)
        self._shards: dict[str, E.EdgeShard] = {}
        # One process at a time, as with Qdrant's local mode: a second one is refused at once.
        self._lock_file = (self.root / ".lock").open("a")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise RuntimeError(f"storage folder {self.root} is already accessed by another "
                               "process") from None

    def _dir(self, name: str) -> Path:
        # A folder name: over 255 bytes it was an OSError (File name too long) at every use;
        # the API and the CLI refuse such names before (rag.index.COLLECTION_NAME, 200 bytes).
        if not name or "/" in name or name.startswith(".") or len(name.encode()) > 255:
            raise ValueError(f"invalid collection name {name!r}")
        return self.root / name

    def _meta_path(self, name: str) -> Path:
        return self._dir(name) / "meta.json"

    def _shard(self, name: str) -> E.EdgeShard:
        if name not in self._shards:
            if not self.collection_exists(name):
                raise ValueError(f"collection {name!r} does not exist")
            self._shards[name] = E.EdgeShard.load(str(self._dir(name) / "shard"))
        return self._shards[name]

    def collection_exists(self, name: str) -> bool:
        return self._meta_path(name).is_file()

    def create_collection(self, name: str, *, vectors_config: dict[str, qm.VectorParams],
                          sparse_vectors_config: dict[str, qm.SparseVectorParams],
                          metadata: dict[str, Any] | None = None) -> None:
        config = E.EdgeConfig(
            vectors={k: E.EdgeVectorParams(size=v.size, distance=_DISTANCE[v.distance])
                     for k, v in vectors_config.items()},
            sparse_vectors={k: E.EdgeSparseVectorParams(
                modifier=E.Modifier.Idf if v.modifier == qm.Modifier.IDF else None)
                for k, v in sparse_vectors_config.items()})
        folder = self._dir(name)
        if folder.exists():
            shutil.rmtree(folder)
        self._shards[name] = E.EdgeShard.create(str(folder / "shard"), config)
        # meta.json is written last: a collection exists only once it is whole.
        self._meta_path(name).write_text(json.dumps(metadata or {}))

    def create_payload_index(self, *_args: Any, **_kwargs: Any) -> None:
        """Small collections scan; nothing to do."""

    def get_collection(self, name: str) -> Any:
        meta = json.loads(self._meta_path(name).read_text())
        return SimpleNamespace(config=SimpleNamespace(metadata=meta))

    def update_collection(self, name: str, *, metadata: dict[str, Any]) -> None:
        path = self._meta_path(name)
        path.write_text(json.dumps({**json.loads(path.read_text()), **metadata}))

    def get_collections(self) -> Any:
        names = sorted(p.parent.name for p in self.root.glob("*/meta.json"))
        return SimpleNamespace(collections=[SimpleNamespace(name=n) for n in names])

    def delete_collection(self, name: str) -> None:
        shard = self._shards.pop(name, None)
        if shard is not None:
            shard.close()
        if self._dir(name).exists():
            self._meta_path(name).unlink(missing_ok=True)
            shutil.rmtree(self._dir(name))

    def upsert(self, name: str, points: list[qm.PointStruct], wait: bool = True) -> None:
        shard = self._shard(name)
        shard.update(E.UpdateOperation.upsert_points(
            [E.Point(id=str(p.id), vector=_vector(p.vector), payload=p.payload) for p in points]))
        shard.flush()

    def delete(self, name: str, selector: qm.PointIdsList, wait: bool = True) -> None:
        shard = self._shard(name)
        shard.update(E.UpdateOperation.delete_points([str(i) for i in selector.points]))
        shard.flush()

    def scroll(self, name: str, *, scroll_filter: qm.Filter | None = None, limit: int = 10,
               offset: Any = None, with_payload: Any = True,
               with_vectors: bool = False) -> tuple[list[_Hit], Any]:
        records, nxt = self._shard(name).scroll(E.ScrollRequest(
            offset=offset, limit=limit, filter=_filter(scroll_filter),
            with_payload=_payload_sel(with_payload), with_vector=with_vectors))
        return [_Hit(str(r.id), r.payload, vector=_from_edge_vector(r.vector) if with_vectors
                     else None) for r in records], nxt

    def retrieve(self, name: str, ids: list[str], with_payload: Any = True) -> list[_Hit]:
        return [_Hit(str(r.id), r.payload)
                for r in self._shard(name).retrieve([str(i) for i in ids],
                                                    with_payload=_payload_sel(with_payload),
                                                    with_vector=False)]

    def count(self, name: str) -> Any:
        return SimpleNamespace(count=self._shard(name).count(E.CountRequest()))

    def query_points(self, name: str, *, query: Any = None, using: str | None = None,
                     prefetch: list[qm.Prefetch] | None = None, limit: int = 10,
                     with_payload: Any = True, query_filter: qm.Filter | None = None) -> Any:
        def nearest(q: Any, use: str | None) -> Any:
            return E.Query.Nearest(_vector(q), using=use)

        if isinstance(query, qm.FusionQuery):
            scoring: Any = E.Fusion.Dbsf() if query.fusion == qm.Fusion.DBSF \
                else E.Fusion.Rrf(k=2)
        elif isinstance(query, qm.RrfQuery):
            scoring = E.Fusion.Rrf(k=query.rrf.k or 2, weights=query.rrf.weights)
        else:
            scoring = nearest(query, using)
        stages = [E.Prefetch(limit=p.limit or 10, query=nearest(p.query, p.using),
                             filter=_filter(p.filter)) for p in prefetch or []]
        hits = self._shard(name).query(E.QueryRequest(
            limit=limit, query=scoring, prefetches=stages or None,
            with_payload=_payload_sel(with_payload), filter=_filter(query_filter)))
        return SimpleNamespace(points=[_Hit(str(h.id), h.payload, h.score) for h in hits])

    def close(self) -> None:
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()
        if not self._lock_file.closed:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
