"""``atende demo install``: the demo shop's fields, teams and flow, as `make run` serves it."""

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
    """Create the demo's custom fields, teams and flow, and make the flow the simulator
    number's default; what exists is left as it is."""
    done = demo.install(sessions(), folder, get_settings().public_url)
    if not done:
        console.print("demo: already installed")
    for what in done:
        console.print(f"demo: created {what}", soft_wrap=True)
