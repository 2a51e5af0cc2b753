"""Which answer mode to ship: each mode on the corpus's report businesses, and the gate's choice.

Reads what ``atende eval answers --modes`` wrote for each report business (one JSON each, every
answer mode of the serving model in one run: ``extraction``, ``serving`` = model+extraction,
``serving:model`` = the model alone, ``serving:model-checked`` = the model deciding and the best
passage unit answering) and gives, per business and over all of them: containment,
answerable wrongly refused, unanswerable refused (asked without their documents), out-of-scope
refused, near-misses refused (the out-of-scope questions carrying ``near_miss``) and hostile
messages that leaked anything (the echo-proof scoring of ``eval/scoring.py``). The gate
(``eval.gate.choose_mode``) then judges the modes on all report businesses together, from each
mode in turn as the one serving, so the table says which beats which beyond noise. Files of
several versions (``--model serving`` for faquad-v5, ``--model negocios-v6`` for a candidate)
give each version's three model modes beside extraction, judged the same way.

Run (after the eval, see docs/knowledge-base.md "Answer mode"):
``.venv/bin/python bench/answer_modes.py bench/results/answers-corpus-test-B-v7.json ...
--json bench/results/answers-corpus-test-modes-v7.json``, one file per report business
(``make adapter-negocios`` runs it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from eval import gate
from eval.answers import CHECKED, EXTRACTION, MODEL, MODEL_EXTRACTION, Outcome
from server.db import dumps

CORPUS = Path("corpus/atende-negocios")
COLUMNS = ("answerable", "containment", "wrongly_refused", "unanswerable_refused",
           "out_of_scope_refused", "near_misses_refused", "hostile_leaks")


def near_misses(business: str) -> set[str]:
    """The ids of a business's out-of-scope questions about a term no document holds."""
    lines = (CORPUS / business / "qa.jsonl").read_text(encoding="utf-8").splitlines()
    return {c["id"] for c in map(json.loads, filter(str.strip, lines)) if c.get("near_miss")}


def figures(rows: list[Outcome], near: set[str]) -> dict[str, float | int]:
    """One mode's figures over these outcomes."""
    def share(kind: str, pred: str, only: set[str] | None = None) -> float:
        mine = [o for o in rows if o.kind == kind and (only is None or o.case in only)]
        return sum(getattr(o, pred) for o in mine) / len(mine) if mine else float("nan")

    answerable = [o for o in rows if o.kind == "in_scope"]
    return {"answerable": len(answerable), "containment": share("in_scope", "contained"),
            "wrongly_refused": share("in_scope", "refused"),
            "unanswerable_refused": share("unanswerable", "passed"),
            "out_of_scope_refused": share("out_of_scope", "passed"),
            "near_misses_refused": share("out_of_scope", "passed", near),
            "hostile_leaks": sum(not o.passed for o in rows if o.kind == "injection")}


def versions(raw: dict) -> dict[str, str]:
    """Each model label of one eval JSON with the version it names (``serving`` is the version
    the database served: its adapter's folder, ``models/adapters/faquad-v5``)."""
    return {label: Path(path).parent.name if label == "serving" else label
            for label, path in raw["models"].items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", type=Path, help="atende eval answers --modes JSONs")
    ap.add_argument("--json", type=Path, help="write the table and the gate's verdicts here")
    args = ap.parse_args()
    per: dict[str, dict[str, dict[str, float | int]]] = {}
    pooled: dict[str, list[Outcome]] = {}
    near_all: set[str] = set()
    for path in sorted(args.results):
        raw = json.loads(path.read_text())
        business = Path(raw["set"]).name
        near = near_misses(business)
        near_all |= near
        cases = [Outcome(**c) for c in raw["cases"]]
        per.setdefault(business, {})
        for label, version in versions(raw).items():
            methods = {EXTRACTION: EXTRACTION, f"{version} {MODEL_EXTRACTION}": label,
                       f"{version} {MODEL}": f"{label}:{MODEL}",
                       f"{version} {CHECKED}": f"{label}:{CHECKED}"}
            for row, method in methods.items():
                if row in per[business]:  # extraction, measured again by a second file
                    continue
                mine = [o for o in cases if o.method == method]
                per[business][row] = figures(mine, near)
                pooled.setdefault(row, []).extend(mine)
    per["all"] = {row: figures(rows, near_all) for row, rows in pooled.items()}
    table = Table(title="Answer modes on the report businesses, at the defaults `make run` serves")
    for col in ("business", "mode", *COLUMNS):
        table.add_column(col, justify="left" if col in ("business", "mode") else "right")
    for business, rows in per.items():
        for row, f in rows.items():
            table.add_row(business, row, *(f"{f[c]:.3f}" if isinstance(f[c], float)
                                           else str(f[c]) for c in COLUMNS))
    console = Console(width=200)
    console.print(table)
    # Every mode of every version judged against each in turn as the one serving: which beats
    # which beyond noise, with no other measure worse beyond noise (the promotion gate's rule).
    choices = {now: gate.choose_mode(pooled, now) for now in pooled}
    for now, choice in choices.items():
        console.print(f"serving {now}: the gate answers {choice.mode}: {choice.reason}")
    if args.json:
        args.json.write_text(dumps({"figures": per, "gate": {
            now: c.as_dict() for now, c in choices.items()}}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
