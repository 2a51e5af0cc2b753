"""``atende models`` and ``atende tokens``: configured models; API tokens."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from server.cli.common import console, fail, sessions
from server.settings import get_settings

models_app = typer.Typer(help="Language models: the configured ones and their state.",
                         no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for the OpenAI-compatible endpoint.",
                         no_args_is_help=True)


@models_app.command("list")
def models_list(
    check: bool = typer.Option(True, help="Load local models and ask remote servers."),
    json_out: Path = typer.Option(None, "--json", help="Also write the list to this file."),
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
        json_out.write_text(json.dumps(rows, ensure_ascii=False, indent=2))


@tokens_app.command("create")
def tokens_create(
    name: str = typer.Argument(..., help="A name to recognise the token by (one per caller)."),
    collection: str = typer.Option(None, help="Knowledge base it answers from; default the "
                                   "configured one."),
) -> None:
    """Create a token; it is printed once and only its hash is kept."""
    from server.services import api_tokens

    try:
        token = api_tokens.create(sessions(), name, collection or get_settings().kb_collection)
    except ValueError as exc:
        fail(str(exc))
    console.print(f"Token {name}: [bold]{token}[/]  (shown once; keep it safe)")


@tokens_app.command("list")
def tokens_list() -> None:
    """List tokens (never their secrets)."""
    from server.services import api_tokens

    table = Table("name", "knowledge base", "created", "revoked")
    for t in api_tokens.listing(sessions()):
        table.add_row(t.name, t.collection, f"{t.created_at:%Y-%m-%d %H:%M}",
                      f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "")
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(name: str = typer.Argument(..., help="Name of the token to revoke.")) -> None:
    """Revoke a token at once."""
    from server.services import api_tokens

    if not api_tokens.revoke(sessions(), name):
        fail(f"no live token named {name!r}")
    console.print(f"Revoked {name}.")


