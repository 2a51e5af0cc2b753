"""``atende flows``: check a flow file before it goes live, store it, get it back as YAML, and
see what is stored, with no server running (the database the settings name)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Column, Table

import flows
from server.cli.common import console, err, fail, json_option, sessions, write_out
from server.services import flow_store

app = typer.Typer(help="Conversation flows: validate, import, export, list.", no_args_is_help=True)


def _read(path: Path) -> flows.Flow:
    """The flow in a YAML (or .json) file; a FlowError for what is wrong with it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}")
    if path.suffix.lower() == ".json":
        return flow_store.parse_json(text)
    return flow_store.parse_yaml(text)


def _show(path: Path, problems: list[dict[str, str]]) -> None:
    err.print(f"[bold red]{escape(str(path))}: {len(problems)} problem(s)[/]")
    for p in problems:
        err.print(f"  [bold]{escape(p['path'])}[/]: {escape(p['problem'])}")


@app.command("validate")
def validate(
    file: Path = typer.Argument(..., help="A flow file (YAML, or .json)."),
    json_out: Path | None = json_option("Also write the problems here, as a JSON list of "
                                        "{path, problem}."),
    offline: bool = typer.Option(False, help="Skip the database: custom fields and team "
                                 "schedules are not checked, so any fields.<key> read is "
                                 "refused."),
) -> None:
    """Check a flow against the company's custom fields and team hours; exit 1 if it has
    problems."""
    try:
        flow = _read(file)
        if offline:
            found = flows.check(flow)
        else:
            with sessions()() as s:
                found = flow_store.problems(s, flow)
        problems = flow_store.problem_list(flows.FlowError(found))
    except flows.FlowError as exc:
        problems = flow_store.problem_list(exc)
    if json_out is not None:
        write_out(json_out, json.dumps(problems, ensure_ascii=False, indent=1) + "\n")
    if problems:
        _show(file, problems)
        raise typer.Exit(1)
    console.print(f"{escape(str(file))}: [green]valid[/] ({flow.id}, {len(flow.nodes)} nodes)")


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help="A flow file (YAML, or .json)."),
    disabled: bool = typer.Option(False, help="Store it switched off."),
) -> None:
    """Store a flow (replacing the one with its id, version + 1); exit 1 if it has problems."""
    try:
        flow = _read(file)
        with sessions().begin() as s:
            row = flow_store.save(s, flow, enabled=False if disabled else None)
            key, version, enabled = row.key, row.version, row.enabled
    except flows.FlowError as exc:
        _show(file, flow_store.problem_list(exc))
        raise typer.Exit(1) from None
    state = "enabled" if enabled else "disabled"
    console.print(f"Stored flow [bold]{key}[/] version {version} ({state}).")


@app.command("export")
def export(
    key: str = typer.Argument(..., help="The flow's id."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write here, not to "
                                       "standard output."),
) -> None:
    """Print a stored flow as YAML, ready to edit and import again."""
    with sessions()() as s:
        try:
            text = flows.to_yaml(flow_store.load(s, key))
        except LookupError as exc:
            fail(str(exc))
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_out(output, text)
        console.print(f"Wrote {escape(str(output))}.")


@app.command("list")
def list_() -> None:
    """The stored flows."""
    with sessions()() as s:
        rows = flow_store.listing(s)
        table = Table(Column("key", no_wrap=True), "name", "enabled", "version", "nodes",
                      "triggers", "updated")
        for row in rows:
            table.add_row(row.key, escape(row.name), "yes" if row.enabled else "no",
                          str(row.version), str(len(row.definition.get("nodes") or {})),
                          escape(", ".join(row.definition.get("triggers") or [])),
                          f"{row.updated_at:%Y-%m-%d %H:%M}")
    if rows:
        console.print(table)
    else:
        console.print("No flows stored: `atende flows import FILE` stores one.")
