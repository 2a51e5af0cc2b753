"""The ``atende`` command line."""

from __future__ import annotations

import ipaddress
import logging

import typer
from rich.table import Table

from models.base import ModelConfigError
from server.cli import demo, finetune, flows, gateway, kb, models, users
from server.cli import eval as eval_cli
from server.cli import openai_ft as _openai_ft  # noqa: F401  (registers finetune openai-*)
from server.cli.common import console, fail
from server.settings import get_settings, use_settings

app = typer.Typer(help="Atende: atendimento no WhatsApp com IA. Customer service on WhatsApp "
                  "with a grounded AI assistant.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(kb.app, name="kb")
app.add_typer(db_app, name="db")
app.add_typer(models.models_app, name="models")
app.add_typer(models.tokens_app, name="tokens")
app.add_typer(eval_cli.app, name="eval")
app.add_typer(finetune.app, name="finetune")
app.add_typer(gateway.app, name="gateway")
app.add_typer(flows.app, name="flows")
app.add_typer(demo.app, name="demo")
app.add_typer(users.app, name="users")


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
    if (settings.simulator_enabled and "simulator_enabled" not in settings.model_fields_set
            and not _loopback(host)):
        fail(f"--host {host} would let anyone reach the built-in simulator and write as any "
             "customer: set ATENDE_SIMULATOR_ENABLED=false, or =true to expose it on purpose")
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
        fail(str(exc))
    console.print(f"[bold green]Atende[/] at [link]{settings.public_url}[/]  "
                  f"(login: {settings.public_url}/login, simulator: "
                  f"{settings.public_url}/simulator, API docs: {settings.public_url}/docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@app.command()
def worker(
    threads: int = typer.Option(0, help="Worker threads; 0 means ATENDE_QUEUE_WORKERS."),
) -> None:
    """Run the background workers alone (turns, sends, sweeps): the scale path, beside
    `atende serve` with ATENDE_RUN_CONSUMER=false, on a shared queue (ATENDE_QUEUE_URL),
    database and Qdrant server. Any number may run; a dead one's work is taken over."""
    from server import runtime
    from server.app import resume
    from server.queue import huey

    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings.ensure_dirs()
    try:
        runtime.start(settings)
    except (ModelConfigError, ValueError, RuntimeError) as exc:
        fail(str(exc))
    consumer = huey().create_consumer(workers=threads or settings.queue_workers,
                                    worker_type="thread")
    resume(settings)
    console.print(f"[bold green]Atende worker[/] {threads or settings.queue_workers} threads")
    consumer.run()


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost: reachable from elsewhere
        return False


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


@app.command("secret-key")
def secret_key() -> None:
    """Print a new key for ATENDE_SECRET_KEY (it seals instance secrets in the database)."""
    from cryptography.fernet import Fernet

    print(Fernet.generate_key().decode())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to the database (ATENDE_DATABASE_URL)."""
    from server.db import migrate

    settings = get_settings()
    settings.ensure_dirs()
    migrate(settings.sqlalchemy_url)
    console.print("Database is up to date.")



if __name__ == "__main__":
    app()
