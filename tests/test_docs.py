"""The docs stay true: every setting is listed, every link resolves, the CLI explains itself."""

from __future__ import annotations

import re
import subprocess

from server.settings import Settings
from tests.conftest import ATENDE, ROOT

REFERENCE = ROOT / "docs" / "reference.md"
# README.md is the front door: what Atende is, the two commands, the layout, links. The rest is
# under docs/, one subject per file.
README_MOST_BYTES = 6500
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_reference_lists_every_setting() -> None:
    reference = REFERENCE.read_text()
    missing = [n for n in Settings.model_fields if f"`ATENDE_{n.upper()}`" not in reference]
    assert not missing
    table = subprocess.run([*ATENDE, "settings", "--markdown"], capture_output=True, text=True,
                           cwd=ROOT).stdout
    assert table.strip() in reference, (
        "docs/reference.md settings table is stale: paste `atende settings --markdown` there")


def test_readme_is_a_front_door() -> None:
    readme = ROOT / "README.md"
    assert readme.stat().st_size <= README_MOST_BYTES, "README.md grew: move detail to docs/"
    assert "../shared" not in readme.read_text(), "README links outside the repository"


def test_every_relative_link_resolves() -> None:
    broken = []
    for doc in [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text()
        for target in _LINK.findall(text):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            file = (doc.parent / path).resolve() if path else doc
            if not file.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file.read_text()):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    heads = re.findall(r"^#+\s+(.+?)\s*$", markdown, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in heads}


def test_every_command_has_help() -> None:
    for cmd in (["--help"], ["serve", "--help"], ["kb", "ingest", "--help"], ["db", "--help"]):
        out = subprocess.run([*ATENDE, *cmd], capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        assert "Usage" in out.stdout
    serve = subprocess.run([*ATENDE, "serve", "--help"], capture_output=True, text=True).stdout
    assert "--port" in serve and "TCP port" in serve
