"""The answer-mode half of ``atende models compare``, and ``atende models mode``.

Extraction takes part in the gate as a candidate like any version: every compare measures the
serving model in both its modes (the model alone; the model with extraction as the guard's
fallback) and extraction, judges each against the mode the knowledge base answers in now
(``eval.gate.choose_mode``), and keeps the choice and its reason for that knowledge base
(``server.services.answer_modes``), which serving reads on the next turn.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from server.cli.common import collection_option, console, fail, json_option, sessions, write_out
from server.db import dumps
from server.settings import get_settings

if TYPE_CHECKING:  # the eval package loads the knowledge base's code: only when comparing
    from eval import answers, evalset, gate


def cases(set_dir: Path | None, pairs: Path | None, split: str | None,
          limit: int) -> tuple[evalset.EvalSet, str, str]:
    """The cases to judge on (an eval set, or curated chat pairs written as one), their name,
    and the target metric that suits them (containment; token F1 for pairs)."""
    from server.cli.eval import load_cases

    if (set_dir is None) == (pairs is None):
        fail("give an eval set (--set DIR) or curated chat pairs (--pairs DATASET), one of them")
    if set_dir is not None:
        return load_cases(set_dir, split, limit), set_dir.name, "containment"
    from eval.pairs import TARGET, write
    from finetune.dataset import load_pairs

    assert pairs is not None
    try:
        es = write(load_pairs(pairs), Path(tempfile.mkdtemp(prefix="atende-pairs-")))
    except (OSError, ValueError) as exc:
        fail(f"{pairs}: {exc}")
    es.cases = es.cases[:limit or None]
    return es, f"{pairs.name} (curated pairs)", TARGET


def serving_version() -> str:
    """The name of the local model's version serving now ("base": none)."""
    from server.services import model_versions

    with sessions()() as s:
        v = model_versions.serving(s)
        return v.name if v else "base"


def choose(outcomes: list[answers.Outcome], collection: str, target: str,
           measured: dict[str, Any]) -> gate.ModeChoice:
    """Judge the answer modes of the serving model (``serving``) and extraction against the
    mode ``collection`` answers in now; print each verdict and keep the choice."""
    from eval import answers, gate
    from server.services import answer_modes

    now = answer_modes.current(sessions(), collection).mode
    by_mode = answers.by_mode(outcomes, "serving")
    try:
        choice = gate.choose_mode(by_mode, now, target=target)
    except ValueError as exc:
        fail(str(exc))
    table = Table("mode", "against", *(m for m in gate.METRICS), "verdict",
                  title=f"Answer mode of {collection!r} (the serving model; now {now})")
    for mode, verdict in choice.verdicts.items():
        diffs = {d.metric: f"{d.candidate:.3f} ({d.diff:+.3f})" for d in verdict.deltas}
        table.add_row(mode, now, *(diffs.get(m, "-") for m in gate.METRICS),
                      "passed" if verdict.passed else "refused")
    console.print(table)
    summaries = {mode: rows[0].__dict__ for mode, o in by_mode.items()
                 if (rows := answers.summarize(o))}
    answer_modes.record(sessions(), collection, choice, version=serving_version(),
                        measured={**measured, "target": target, "summary": summaries})
    console.print(f"[bold]{collection}[/] answers in [bold]{choice.mode}[/]: {choice.reason}")
    return choice


def mode_cmd(
    collection: str = collection_option("Knowledge base; default every one the gate judged "
                                        "and the configured one."),
    json_out: Path = json_option("Also write the modes to this file."),
) -> None:
    """How each knowledge base is answered (model, extraction, model+extraction or
    model-checked), chosen by `atende models compare`, and why."""
    from server.services import answer_modes

    asked = [collection] if collection else [get_settings().kb_collection]
    modes = [answer_modes.current(sessions(), collection)] if collection else \
        answer_modes.listing(sessions(), asked)
    table = Table("knowledge base", "mode", "chosen by", "version", "when", "reason")
    for m in modes:
        table.add_row(m.collection, m.mode, m.chosen_by, m.version or "-",
                      f"{m.at:%Y-%m-%d %H:%M}" if m.at else "-", m.reason)
    console.print(table)
    if json_out:
        write_out(json_out, dumps([m.as_dict() for m in modes], ensure_ascii=False, indent=2))
