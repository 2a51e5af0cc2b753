"""The README stays true: every setting is listed, and the CLI explains itself."""

from __future__ import annotations

import subprocess

from server.settings import Settings
from tests.conftest import ATENDE, ROOT


def test_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [n for n in Settings.model_fields if f"`ATENDE_{n.upper()}`" not in readme]
    assert not missing
    table = subprocess.run([*ATENDE, "settings", "--markdown"], capture_output=True, text=True,
                           cwd=ROOT).stdout
    assert table.strip() in readme, "README settings table is stale: atende settings --markdown"


def test_every_command_has_help() -> None:
    for cmd in (["--help"], ["serve", "--help"], ["kb", "ingest", "--help"], ["db", "--help"]):
        out = subprocess.run([*ATENDE, *cmd], capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        assert "Usage" in out.stdout
    serve = subprocess.run([*ATENDE, "serve", "--help"], capture_output=True, text=True).stdout
    assert "--port" in serve and "TCP port" in serve
