"""The knowledge base in Qdrant: documents as passages with a dense and a sparse vector each.

One collection per knowledge base. Both halves of hybrid retrieval live in it and are fused in one
``query_points`` call. The collection records the embedder that filled it; querying it with
another one is refused. Re-ingesting an unchanged document does nothing (content hash).
"""

from __future__ import annotations

import hashlib
import threading
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Literal, TypeVar

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm  # qdrant's request types (not our models package)

from rag import lexical
from rag.chunking import iter_chunks
from rag.edge import EdgeClient
from rag.embedders import Embedder
from rag.parsing import DocumentError

DENSE = "dense"
SPARSE = "lexical"
PREFETCH = 50
# What a knowledge base may be called: a folder name in local mode, so no "/" nor leading dot,
# and at most 200 bytes in UTF-8 (a file name has at most 255, and a reindex adds "__reindex"):
# 64 characters all inside the BMP (3 bytes at most each), or 50 of any kind (4 at most). 64
# emoji made 256 bytes, a 500 (File name too long) everywhere. A regular expression because
# routes, settings and the CLI all check a name with it (pydantic's engine has no look-ahead).
_NEVER = r"/\x00-\x1f"  # in no name
_ASTRAL = r"\U00010000-\U0010ffff"  # outside the BMP: 4 bytes in UTF-8
COLLECTION_NAME = (rf"^(?:[^.{_NEVER}{_ASTRAL}][^{_NEVER}{_ASTRAL}]{{0,63}}"
                   rf"|[^.{_NEVER}][^{_NEVER}]{{0,49}})$")
_T = TypeVar("_T")
_NS = uuid.UUID("6f1e2d3c-7a55-4b8e-9c1d-2f0a9e8b7c6d")
BATCH = 256  # passages embedded at a time
WRITE_BATCH = 1024  # passages written at a time (each write flushes the embedded store)
# Passages of one document. A 500-page manual makes about 2,000; 20,000 bound what one upload
# costs in the store and on the way (the vectors alone are 1.5 KB each) and keep one document's
# embedding to minutes.
MAX_PASSAGES = 20_000



@dataclass(frozen=True)
class Search:
    """How to search: hybrid (fused) or one half; the fusion and its parameters."""

    mode: Literal["hybrid", "dense", "lexical"] = "hybrid"
    fusion: Literal["dbsf", "rrf"] = "dbsf"
    rrf_k: int = 60  # Qdrant's own default is 2; 60 is the usual RRF constant
    weights: list[float] | None = None  # rrf only: [dense, lexical]
    prefetch: int = PREFETCH


class EmbedderMismatch(ValueError):
    """The collection was built with another embedder; reindex it or switch back."""


class IngestConflict(DocumentError):
    """The document was deleted while this upload of it was being embedded. A DocumentError,
    so the admin API and the CLI report it as this file's error (422) and go on."""


@dataclass(frozen=True)
class Passage:
    id: str
    doc: str
    heading: str
    position: int
    text: str
    score: float


@dataclass(frozen=True)
class IngestResult:
    doc: str
    status: Literal["added", "replaced", "unchanged"]
    chunks: int


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class KnowledgeBase:
    """Passages of documents in Qdrant collections, searched with hybrid retrieval."""

    def __init__(self, client: QdrantClient | EdgeClient, embedder: Embedder) -> None:
        self.client: Any = client  # the two share the methods used here
        self.embedder = embedder
        # Qdrant local mode is not made for concurrent writers; embedding stays outside the lock.
        self.lock = threading.RLock()
        # collection -> (revision, passages, df); the revision changes with every write
        self._df: dict[str, tuple[str, int, Counter[str]]] = {}
        # Ingest and delete of one document are serialised: the old passages are read and
        # replaced under its lock (two uploads at once left both versions' passages). Striped:
        # two documents may share a lock, which only makes one wait. Threads of this process
        # only, which is the deployment (the embedded store admits one process, docs/
        # architecture.md); two processes writing one Qdrant server are not covered.
        self._doc_locks = [threading.Lock() for _ in range(64)]
        # (collection, doc) -> deletes so far: an ingest that began before a delete must not
        # write the document back (a DELETE answered 200 was silently undone). One small entry
        # per deleted document name, kept while the process lives.
        self._deletes: dict[tuple[str, str], int] = {}

    def _doc_lock(self, collection: str, doc: str) -> threading.Lock:
        return self._doc_locks[hash((collection, doc)) % len(self._doc_locks)]

    def ensure(self, collection: str) -> None:
        """Create the collection if missing; refuse one built with another embedder."""
        with self.lock:
            self._ensure(collection)

    def _create(self, collection: str, **metadata: object) -> None:
        self.client.create_collection(
            collection,
            vectors_config={DENSE: qm.VectorParams(
                size=self.embedder.dim, distance=qm.Distance.COSINE)},
            sparse_vectors_config={SPARSE: qm.SparseVectorParams(
                modifier=qm.Modifier.IDF)},
            metadata={"embedder": self.embedder.name, "dim": self.embedder.dim, **metadata},
        )
        with warnings.catch_warnings():  # local mode ignores payload indexes, and says so
            warnings.simplefilter("ignore")
            self.client.create_payload_index(collection, "doc", qm.PayloadSchemaType.KEYWORD)

    def _ensure(self, collection: str) -> dict[str, Any]:
        """The collection's metadata (empty for one just created)."""
        if not self.client.collection_exists(collection):
            self._create(collection)
            return {}
        meta = self.client.get_collection(collection).config.metadata or {}
        built_with = meta.get("embedder")
        if built_with != self.embedder.name:
            raise EmbedderMismatch(
                f"collection {collection!r} was built with embedder {built_with!r}, not "
                f"{self.embedder.name!r}: run `atende kb reindex` or set ATENDE_EMBEDDER back")
        return dict(meta)

    def _doc_points(self, collection: str, doc: str) -> list[qm.Record]:
        flt = qm.Filter(must=[qm.FieldCondition(
            key="doc", match=qm.MatchValue(value=doc))])
        with self.lock:
            points, _ = self.client.scroll(collection, scroll_filter=flt, limit=100_000,
                                           with_payload=["hash", "passages"])
        return points

    def ingest(self, collection: str, doc: str, text: str) -> IngestResult:
        """Add or replace one document's passages; an unchanged document is left alone.

        Memory stays bounded whatever the document: at most MAX_PASSAGES passages, chunked
        again on each pass rather than held, embedded BATCH and written WRITE_BATCH at a time
        (one upsert of 33,558 passages held them all as Python objects at once: 1.2 GB).
        """
        self.ensure(collection)
        digest = content_hash(text)
        deletes = self._deletes.get((collection, doc), 0)  # before anything is read
        old = self._doc_points(collection, doc)
        if _whole(old, digest):  # checked again under the lock; this spares the embedding
            return IngestResult(doc, "unchanged", len(old))
        count = sum(1 for _ in islice(iter_chunks(text), MAX_PASSAGES + 1))
        if count > MAX_PASSAGES:
            raise DocumentError(f"{doc}: over {MAX_PASSAGES} passages, the limit for one "
                                "document; split it into smaller documents")
        # The dense side embeds the passage as written (e5 was trained on bare passages); the
        # lexical side also indexes the heading path, so a question naming a section finds it.
        # Measured on FaQuAD (nDCG@10, all 900): headings on both sides 0.912, neither 0.923,
        # dense only 0.912, lexical only 0.925. Every vector is made before anything is
        # written, so a failing embedder leaves the collection as it was.
        dense = np.empty((count, self.embedder.dim), dtype=np.float32)
        for start, batch in _batches(iter_chunks(text), BATCH):
            dense[start:start + len(batch)] = self.embedder.passages([c.text for c in batch])
        with self._doc_lock(collection, doc):  # embedded outside it: a delete need not wait
            if self._deletes.get((collection, doc), 0) != deletes:
                raise IngestConflict(f"{doc}: deleted while this upload was being processed; "
                                     "upload it again to add it back")
            # Read again: another upload of it may have finished while this one embedded.
            old = self._doc_points(collection, doc)
            if _whole(old, digest):
                return IngestResult(doc, "unchanged", len(old))
            self._replace(collection, doc, text, digest, dense, old)
        return IngestResult(doc, "replaced" if old else "added", count)

    def _replace(self, collection: str, doc: str, text: str, digest: str, dense: np.ndarray,
                 old: list[qm.Record]) -> None:
        """Write a document's embedded passages, then remove its ``old`` ones that are not
        among them (under the document's lock)."""
        count = len(dense)
        # New passages go in before the old ones go out, so a search never finds the doc missing.
        old_ids = {str(p.id) for p in old}
        written: list[str] = []
        try:
            for _, batch in _batches(iter_chunks(text), WRITE_BATCH):
                points = []
                for c in batch:
                    payload = {"doc": doc, "hash": digest, "heading": c.heading_path,
                               "position": c.position, "text": c.text, "passages": count}
                    points.append(qm.PointStruct(
                        id=str(uuid.uuid5(_NS, f"{collection}/{doc}/{digest}/{c.position}")),
                        vector={DENSE: dense[c.position].tolist(), SPARSE: _sparse_of(payload)},
                        payload=payload))
                written += [str(p.id) for p in points]  # before: a write may fail half done
                with self.lock:
                    self.client.upsert(collection, points, wait=True)
        except BaseException:  # what was written goes, and the old passages stay whole
            added = [i for i in written if i not in old_ids]
            with self.lock:
                for start in range(0, len(added), WRITE_BATCH):
                    self.client.delete(collection, qm.PointIdsList(
                        points=added[start:start + WRITE_BATCH]), wait=True)
            raise
        with self.lock:
            new_ids = set(written)
            stale = [p.id for p in old if str(p.id) not in new_ids]
            if stale:
                self.client.delete(collection, qm.PointIdsList(points=stale), wait=True)
            self._changed(collection)

    def _all_points(self, collection: str, vectors: bool) -> list[qm.Record]:
        out: list[qm.Record] = []
        offset = None
        while True:
            points, offset = self.client.scroll(collection, limit=256, offset=offset,
                                                with_payload=True, with_vectors=vectors)
            out += points
            if offset is None:
                return out

    def reindex(self, collection: str, tick: Callable[[int], None] = lambda n: None) -> int:
        """Re-embed every passage of a collection with this embedder; returns how many.

        The new vectors are built in a side collection first and copied back, so an interrupted
        run loses nothing: the next one resumes from the finished side collection.
        """
        side = f"{collection}__reindex"
        with self.lock:
            ready = (self.client.collection_exists(side) and (self.client.get_collection(side)
                     .config.metadata or {}).get("complete") is True)
            if not ready:
                if self.client.collection_exists(side):
                    self.client.delete_collection(side)
                old = self._all_points(collection, vectors=False)
                self._create(side)
        if not ready:
            for start in range(0, len(old), 64):
                batch = old[start:start + 64]
                vecs = self.embedder.passages([(p.payload or {})["text"] for p in batch])
                points = [qm.PointStruct(
                    id=p.id, payload=p.payload,
                    vector={DENSE: v.tolist(), SPARSE: _sparse_of(p.payload or {})})
                    for p, v in zip(batch, vecs, strict=True)]
                with self.lock:
                    self.client.upsert(side, points, wait=True)
                tick(len(batch))
            with self.lock:
                self.client.update_collection(side, metadata={"complete": True})
        with self.lock:
            fresh = self._all_points(side, vectors=True)
            if self.client.collection_exists(collection):
                self.client.delete_collection(collection)
            self._create(collection)
            for start in range(0, len(fresh), 256):
                self.client.upsert(collection, [
                    qm.PointStruct(id=p.id, payload=p.payload, vector=p.vector or {})
                    for p in fresh[start:start + 256]], wait=True)
            self.client.delete_collection(side)
        return len(fresh)

    def idf(self, collection: str) -> Callable[[str], float]:
        """Inverse document frequency of a stemmed term among the collection's passages (BM25's
        form, as Qdrant's IDF modifier computes it); counted again after the collection
        changes, in this process or another (a shared Qdrant server)."""
        with self.lock:
            revision = str(self._ensure(collection).get("revision", ""))
            n = self.client.count(collection).count
            cached = self._df.get(collection)
            if cached is None or cached[:2] != (revision, n):
                df: Counter[str] = Counter()
                for p in self._all_points(collection, vectors=False):
                    payload = p.payload or {}
                    df.update(set(lexical.tokens(f"{payload.get('heading', '')}\n"
                                                 f"{payload.get('text', '')}")))
                cached = self._df[collection] = (revision, n, df)
        return lexical.idf(cached[2], cached[1])

    def _changed(self, collection: str) -> None:
        """Mark a write, so every process's idf counts again (a same-size replace keeps the
        passage count)."""
        self._df.pop(collection, None)
        self.client.update_collection(collection, metadata={"revision": uuid.uuid4().hex})

    def delete(self, collection: str, doc: str) -> int:
        """Remove a document's passages; returns how many went."""
        if not self.client.collection_exists(collection):
            return 0
        key = (collection, doc)
        with self._doc_lock(collection, doc), self.lock:
            old = self._doc_points(collection, doc)
            if old:
                # An upload of it still embedding will not write it back (see ingest).
                self._deletes[key] = self._deletes.get(key, 0) + 1
                self.client.delete(collection, qm.PointIdsList(points=[p.id for p in old]),
                                   wait=True)
                self._changed(collection)
        return len(old)

    def documents(self, collection: str) -> dict[str, int]:
        """Documents of a collection with their passage counts."""
        if not self.client.collection_exists(collection):
            return {}
        counts: dict[str, int] = {}
        offset = None
        while True:
            with self.lock:
                points, offset = self.client.scroll(collection, limit=1000, offset=offset,
                                                    with_payload=["doc"])
            for p in points:
                name = (p.payload or {}).get("doc", "?")
                counts[name] = counts.get(name, 0) + 1
            if offset is None:
                return counts

    def passages(self, collection: str, ids: list[str]) -> list[Passage]:
        """Stored passages by id (the citations of a reply); unknown ids are left out."""
        if not ids or not self.client.collection_exists(collection):
            return []
        with self.lock:
            found = self.client.retrieve(collection, ids, with_payload=True)
        return [_passage(p.id, p.payload, 0.0) for p in found if p.payload]

    def search(self, collection: str, query: str, *, top_k: int = 4,
               how: Search | None = None, exclude_docs: Sequence[str] = ()) -> list[Passage]:
        """Hybrid search (or one half of it): dense and lexical prefetches fused in one query.

        ``exclude_docs`` searches as if those documents were not in the collection.
        """
        how = how or Search()
        self.ensure(collection)
        flt = qm.Filter(must_not=[qm.FieldCondition(
            key="doc", match=qm.MatchValue(value=d)) for d in exclude_docs]) \
            if exclude_docs else None
        dense = qm.Prefetch(query=self.embedder.query(query).tolist(), using=DENSE,
                                limit=how.prefetch, filter=flt) if how.mode != "lexical" else None
        idx, weights = lexical.query_vector(query)
        sparse = qm.Prefetch(query=qm.SparseVector(indices=idx, values=weights),
                                 using=SPARSE, limit=how.prefetch, filter=flt) if idx else None
        with self.lock:
            if dense is None:  # lexical only
                if sparse is None:
                    return []
                res = self.client.query_points(collection, query=sparse.query, using=SPARSE,
                                               limit=top_k, with_payload=True, query_filter=flt)
            elif how.mode == "dense" or sparse is None:  # a query of stop words only: dense
                res = self.client.query_points(collection, query=dense.query, using=DENSE,
                                               limit=top_k, with_payload=True, query_filter=flt)
            else:
                fused: qm.Query = qm.FusionQuery(fusion=qm.Fusion.DBSF)
                if how.fusion == "rrf":
                    fused = qm.RrfQuery(rrf=qm.Rrf(k=how.rrf_k, weights=how.weights))
                res = self.client.query_points(collection, prefetch=[dense, sparse],
                                               query=fused, limit=top_k, with_payload=True)
        return [_passage(p.id, p.payload, p.score) for p in res.points if p.payload]


def _whole(old: list[qm.Record], digest: str) -> bool:
    """Whether a document's stored passages are all of this content. Every passage carries the
    hash and their count (written in batches, a copy cut short by a crash is not whole;
    passages written before batching carry no count)."""
    return bool(old) and all((p.payload or {}).get("hash") == digest
                             and (p.payload or {}).get("passages", len(old)) == len(old)
                             for p in old)


def _batches(items: Iterable[_T], size: int) -> Iterator[tuple[int, list[_T]]]:
    """Consecutive lists of ``size`` items (the last one shorter), each with its start."""
    it, start = iter(items), 0
    while batch := list(islice(it, size)):
        yield start, batch
        start += len(batch)


def _sparse_of(payload: dict) -> qm.SparseVector:
    idx, weights = lexical.passage_vector(f"{payload.get('heading', '')}\n{payload['text']}")
    return qm.SparseVector(indices=idx, values=weights)


def _passage(point_id: object, payload: dict, score: float) -> Passage:
    return Passage(id=str(point_id), doc=payload["doc"], heading=payload["heading"],
                   position=payload["position"], text=payload["text"], score=score)
