"""What the command modules share: consoles, failing with a message, the database."""

from __future__ import annotations

import re
from pathlib import Path
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


def json_option(help: str) -> Any:
    """``--json FILE``, refused before the command does its work when FILE cannot be written
    (a long evaluation should not end in a traceback); write it with ``write_out``."""
    def check(value: Path | None) -> Path | None:
        if value is not None:
            problem = _unwritable(Path(value))
            if problem:
                fail(f"cannot write --json {value}: {problem}")
        return value
    return typer.Option(None, "--json", help=help, callback=check)


def _unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be written, or None. Tried by opening it to append, which changes
    no file already there; one this made is removed again."""
    try:
        existed = path.exists()
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    if not existed:
        path.unlink(missing_ok=True)
    return None


def write_out(path: Path, text: str) -> None:
    """Write a file the user named, failing with a message, not a traceback, when it cannot be
    (checked beforehand, but a disk can fill or a folder go meanwhile)."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")


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
