"""``atende users``: the people who log in to the web app, made and reset from a shell.

The first admin can only come from here (``atende users create --admin``): the API that makes
users wants an admin already. A password is asked twice without echo, or read from standard
input (``--password-stdin``) for scripts, so it never sits in the shell's history or ``ps``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import typer
from rich.table import Table

from server.cli.common import console, fail, json_option, sessions, write_out
from server.db import dumps

app = typer.Typer(help="Users of the web app: create them, list them, reset a password.",
                  no_args_is_help=True)
Level = Literal["admin", "manager", "agent"]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@app.command("create")
def create(
    email: str = typer.Option(..., help="The e-mail they log in with."),
    name: str = typer.Option(..., help="Their name, as colleagues see it."),
    admin: bool = typer.Option(False, "--admin", help="Level admin (the first user is one)."),
    level: Level = typer.Option("agent", help="admin, manager or agent."),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the password from standard input."),
) -> None:
    """Create a user who can log in; the password is asked twice."""
    from server.services import auth
    from server.services.contact_data import Conflict

    if admin and level not in ("agent", "admin"):
        fail("--admin and --level say two levels: give one")
    level = "admin" if admin else level
    try:
        user = auth.create_user(sessions(), name, email, level, _password(password_stdin))
    except (ValueError, Conflict) as exc:
        fail(str(exc))
    console.print(f"Created {user.email} ({user.level}): log in at /login.")


@app.command("list")
def listing(json_out: Path = json_option("Also write the list here.")
            ) -> None:
    """Every user: level, teams, active, whether they have a password, last login."""
    from server.services import auth

    rows = auth.listing(sessions())
    table = Table("id", "name", "e-mail", "level", "teams", "active", "password", "last login")
    for r in rows:
        table.add_row(str(r["id"]), r["name"], r["email"], r["level"], ", ".join(r["teams"]),
                      "yes" if r["active"] else "no", "yes" if r["password"] else "no",
                      f"{r['last_login']:%Y-%m-%d %H:%M}" if r["last_login"] else "")
    console.print(table)
    if json_out:
        write_out(json_out, dumps(rows, ensure_ascii=False, indent=2, default=str))


@app.command("password")
def password(
    email: str = typer.Argument(..., help="The user's e-mail."),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the password from standard input."),
) -> None:
    """Set a user's password; their open sessions end."""
    from server.services import auth

    try:
        auth.set_password(sessions(), email, _password(password_stdin))
    except (ValueError, LookupError) as exc:
        fail(str(exc))
    console.print(f"Password of {email} changed; their sessions ended.")
