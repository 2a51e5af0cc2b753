"""The ``atende`` command line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from eval import cli as eval_cli
from models.base import ModelConfigError
from server.settings import get_settings, use_settings

app = typer.Typer(help="Atende: atendimento no WhatsApp com IA. Customer service on WhatsApp "
                  "with a grounded AI assistant.", no_args_is_help=True)
kb_app = typer.Typer(help="Knowledge base: ingest, list and delete documents.",
                     no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
models_app = typer.Typer(help="Language models: the configured ones and their state.",
                         no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for the OpenAI-compatible endpoint.",
                         no_args_is_help=True)
app.add_typer(kb_app, name="kb")
app.add_typer(db_app, name="db")
app.add_typer(models_app, name="models")
app.add_typer(tokens_app, name="tokens")
app.add_typer(eval_cli.app, name="eval")
console = Console()
err = Console(stderr=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]Error:[/] {message}")
    raise typer.Exit(2)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="TCP port to listen on."),
) -> None:
    """Run the server: webhooks, API, simulator page and the background workers."""
    import uvicorn

    from server import runtime
    from server.app import create_app

    settings = get_settings()
    if not settings.public_url:
        settings = use_settings(settings.model_copy(
            update={"public_url": f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"}))
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings.ensure_dirs()
    try:
        with console.status("Loading the model and the knowledge base..."):
            runtime.start(settings)
    except (ModelConfigError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    console.print(f"[bold green]Atende[/] at [link]{settings.public_url}[/]  "
                  f"(simulator: {settings.public_url}/simulator, API docs: "
                  f"{settings.public_url}/docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def settings_rows() -> list[tuple[str, str, str]]:
    """(variable, default, description) of every setting."""
    from server.settings import Settings

    rows = []
    for name, f in Settings.model_fields.items():
        default = f.get_default(call_default_factory=True)
        shown = ("(empty)" if default in (None, "", []) else
                 "(pt-BR assistant instructions)" if name == "persona" else f"`{default}`")
        rows.append((f"`ATENDE_{name.upper()}`", shown, f.description or ""))
    return rows


@app.command("settings")
def settings_cmd(markdown: bool = typer.Option(False, help="Print a Markdown table.")) -> None:
    """List every setting (environment variable), its default and what it does."""
    rows = settings_rows()
    if markdown:
        print("| variable | default | what it is |\n|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    table = Table("variable", "default", "what it is")
    for row in rows:
        table.add_row(*(c.strip("`") for c in row))
    console.print(table)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to the database (ATENDE_DATABASE_URL)."""
    from server.db import migrate

    settings = get_settings()
    settings.ensure_dirs()
    migrate(settings.sqlalchemy_url)
    console.print("Database is up to date.")


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        elif p.is_file():
            found.append(p)
        else:
            _fail(f"{p}: no such file or folder")
    return found


@kb_app.command("ingest")
def kb_ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders (.md, .txt) to ingest."),
    collection: str = typer.Option(None, help="Knowledge base; default ATENDE_KB_COLLECTION."),
    json_out: Path = typer.Option(None, "--json", help="Also write the results to this file."),
) -> None:
    """Add or update documents; unchanged files are skipped, changed ones replaced."""
    from rag.parsing import DocumentError, read_text
    from server.runtime import open_kb

    settings = get_settings()
    name = collection or settings.kb_collection
    files = _files(paths)
    try:
        kb = open_kb(settings)
    except (RuntimeError, ValueError) as exc:
        _fail(str(exc))
    results: list[dict[str, object]] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"Ingesting into {name}", total=len(files))
        for f in files:
            try:
                res = kb.ingest(name, f.name, read_text(f))
                results.append({"doc": f.name, "status": res.status, "chunks": res.chunks})
            except DocumentError as exc:
                results.append({"doc": f.name, "status": "error", "error": str(exc)})
            progress.advance(task)
    kb.client.close()
    table = Table("document", "status", "passages")
    for r in results:
        table.add_row(str(r["doc"]), str(r["status"]), str(r.get("chunks", r.get("error"))))
    console.print(table)
    if json_out:
        json_out.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    if any(r["status"] == "error" for r in results):
        raise typer.Exit(1)


@kb_app.command("list")
def kb_list(collection: str = typer.Option(None, help="Knowledge base; default the configured.")
            ) -> None:
    """List the documents of a knowledge base with their passage counts."""
    from server.runtime import open_kb

    settings = get_settings()
    kb = open_kb(settings)
    docs = kb.documents(collection or settings.kb_collection)
    kb.client.close()
    table = Table("document", "passages")
    for doc, n in sorted(docs.items()):
        table.add_row(doc, str(n))
    console.print(table)


@kb_app.command("delete")
def kb_delete(doc: str = typer.Argument(..., help="Document name, as `kb list` shows it."),
              collection: str = typer.Option(None, help="Knowledge base; default the configured.")
              ) -> None:
    """Remove a document and its passages from a knowledge base."""
    from server.runtime import open_kb

    settings = get_settings()
    kb = open_kb(settings)
    removed = kb.delete(collection or settings.kb_collection, doc)
    kb.client.close()
    if not removed:
        _fail(f"no document {doc!r}")
    console.print(f"Removed {doc} ({removed} passages).")


def _sessions() -> sessionmaker[Session]:
    from server.db import migrate, sessions_for

    settings = get_settings()
    settings.ensure_dirs()
    migrate(settings.sqlalchemy_url)
    return sessions_for(settings.sqlalchemy_url)


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
        _fail(str(exc))
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
        token = api_tokens.create(_sessions(), name, collection or get_settings().kb_collection)
    except ValueError as exc:
        _fail(str(exc))
    console.print(f"Token {name}: [bold]{token}[/]  (shown once; keep it safe)")


@tokens_app.command("list")
def tokens_list() -> None:
    """List tokens (never their secrets)."""
    from server.services import api_tokens

    table = Table("name", "knowledge base", "created", "revoked")
    for t in api_tokens.listing(_sessions()):
        table.add_row(t.name, t.collection, f"{t.created_at:%Y-%m-%d %H:%M}",
                      f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "")
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(name: str = typer.Argument(..., help="Name of the token to revoke.")) -> None:
    """Revoke a token at once."""
    from server.services import api_tokens

    if not api_tokens.revoke(_sessions(), name):
        _fail(f"no live token named {name!r}")
    console.print(f"Revoked {name}.")


if __name__ == "__main__":
    app()
