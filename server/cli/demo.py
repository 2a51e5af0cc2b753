"""``atende demo install``: the demo shop's fields, teams, users and flow, as `make run` serves
it; ``atende demo logins``: how to log in to it."""

from __future__ import annotations

from pathlib import Path

import typer

from server.cli.common import console, sessions
from server.services import demo
from server.settings import get_settings

app = typer.Typer(help="The demo shop (Loja Aurora).", no_args_is_help=True)


@app.command("install")
def install(folder: Path = typer.Option(Path("demo/loja-aurora"), help="The demo's folder: "
                                        "company.yaml and flow.yaml.")) -> None:
    """Create the demo's custom fields, teams, users and flow, and make the flow the simulator
    number's default; what exists is left as it is. New users' passwords go to
    DATA_DIR/demo-logins.txt (`atende demo logins`)."""
    settings = get_settings()
    done = demo.install(sessions(), folder, settings.public_url, settings.data_dir)
    if not done:
        console.print("demo: already installed")
    for what in done:
        console.print(f"demo: created {what}", soft_wrap=True)


@app.command("logins")
def logins() -> None:
    """Print how to log in to the demo (DATA_DIR/demo-logins.txt, written by `demo install`)."""
    path = get_settings().data_dir / demo.LOGINS
    if path.exists():
        console.print(path.read_text(encoding="utf-8"), end="", soft_wrap=True, highlight=False)
    else:
        console.print("demo: no logins yet (`atende demo install` makes them)")
