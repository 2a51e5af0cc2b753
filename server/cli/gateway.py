"""``atende gateway``: read saved webhook bodies as Atende reads them, to answer "why did this
message not arrive?" without a server, a database or the gateway's signature."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from gateway_bridge import (
    PROVIDERS,
    AuthError,
    ConnectionUpdate,
    Event,
    Ignored,
    InboundMessage,
    PayloadError,
    StatusUpdate,
    adapter_for,
)
from server.cli.common import console

app = typer.Typer(help="WhatsApp gateways: read what they send.", no_args_is_help=True)


def describe(ev: Event) -> dict[str, Any]:
    """One event as plain JSON: what support staff compare with the gateway's logs."""
    if isinstance(ev, InboundMessage):
        return {"kind": "message", "id": ev.provider_message_id, "from_phone": ev.phone,
                "from_lid": ev.lid, "from_me": ev.from_me, "type": ev.type,
                "text": ev.text or None,
                "media": None if ev.media is None else {"mime": ev.media.mime},
                "timestamp": int(ev.timestamp.timestamp()), "group": ev.is_group,
                "backlog": ev.backlog}
    if isinstance(ev, StatusUpdate):
        return {"kind": "status", "id": ev.provider_message_id, "status": ev.status,
                "error": None if not (ev.error or ev.error_code) else
                {"code": ev.error_code, "message": ev.error}}
    if isinstance(ev, ConnectionUpdate):
        return {"kind": "connection", "state": ev.state, "qr": ev.qr, "detail": ev.detail}
    assert isinstance(ev, Ignored)
    return {"kind": "ignored", "reason": ev.reason, "unknown": ev.unknown}


def read(provider: str, path: Path) -> dict[str, Any]:
    """What one saved body holds: {"file", "events"} or {"file", "error"}."""
    try:
        body = path.read_bytes()
        events = adapter_for(provider).parse(body, None)
    except (OSError, PayloadError, AuthError) as exc:
        return {"file": str(path), "error": str(exc)}
    return {"file": str(path), "events": [describe(ev) for ev in events]}


@app.command("parse")
def parse(
    provider: str = typer.Argument(..., help=f"One of: {', '.join(sorted(PROVIDERS))}."),
    files: list[Path] = typer.Argument(..., help="Saved webhook bodies (JSON)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list on standard output."),
) -> None:
    """Show the events Atende reads in saved webhook bodies (no signature check); exit 2 if
    any file cannot be read."""
    if provider not in PROVIDERS:
        console.print(f"[red]unknown provider {provider!r}; known: {sorted(PROVIDERS)}[/]")
        raise typer.Exit(2)
    results = [read(provider, f) for f in files]
    if as_json:
        typer.echo(json.dumps(results, ensure_ascii=False, indent=1))
    else:
        for res in results:
            _show(res)
    if any("error" in r for r in results):
        raise typer.Exit(2)


def _show(res: dict[str, Any]) -> None:
    if "error" in res:
        console.print(f"[bold]{res['file']}[/]: [red]cannot read it: {res['error']}[/]")
        return
    table = Table(title=res["file"], title_justify="left")
    for col in ("kind", "id", "what"):
        table.add_column(col)
    for ev in res["events"]:
        what = {k: v for k, v in ev.items() if k not in ("kind", "id") and v not in (None, False)}
        table.add_row(ev["kind"], ev.get("id") or "", json.dumps(what, ensure_ascii=False))
    if not res["events"]:
        table.add_row("-", "", "no events")
    console.print(table)
