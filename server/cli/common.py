"""What the command modules share: consoles, failing with a message, the database."""

from __future__ import annotations

import re
from typing import Any, NoReturn

import typer
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from server.settings import get_settings

console = Console()
err = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """Print an error and exit with status 2."""
    err.print(f"[bold red]Error:[/] {message}")
    raise typer.Exit(2)


def collection_option(help: str) -> Any:
    """``--collection NAME``, checked against what a knowledge base may be called."""
    from rag.index import COLLECTION_NAME

    def check(value: str | None) -> str | None:
        if value is not None and not re.fullmatch(COLLECTION_NAME, value):
            raise typer.BadParameter("a knowledge base name has 1 to 64 characters, no '/' "
                                     "and no leading '.'")
        return value
    return typer.Option(None, help=help, callback=check)


def sessions() -> sessionmaker[Session]:
    """Database sessions, the schema brought up to date first, and ATENDE_ADMIN_TOKEN's token
    with it (the CLI lists and revokes it like any other)."""
    from server.db import migrate, sessions_for
    from server.services import api_tokens

    settings = get_settings()
    settings.ensure_dirs()
    migrate(settings.sqlalchemy_url)
    made = sessions_for(settings.sqlalchemy_url)
    if settings.admin_token:
        api_tokens.ensure_setting(made, settings.admin_token.get_secret_value())
    return made
