"""What every document reader shares: the upload limit, the error, and tables as text."""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_BYTES = 20 * 1024 * 1024
_SPACES = re.compile(r"\s+")  # whitespace as str.split() finds it


class DocumentError(ValueError):
    """A document cannot be ingested; the message says which and why."""


def squash(text: str) -> str:
    """``" ".join(text.split())`` without the list of every word (200 MB for a 20 MB text)."""
    return _SPACES.sub(" ", text).strip()


def table(rows: Iterable[Iterable[str]]) -> str:
    """Rows as a Markdown table: readable as text, and kept whole by the chunker."""
    cleaned = [[squash(c).replace("|", "/") for c in row] for row in rows]
    cleaned = [r for r in cleaned if any(r)]
    if not cleaned:
        return ""
    width = max(len(r) for r in cleaned)
    lines = ["| " + " | ".join(r + [""] * (width - len(r))) + " |" for r in cleaned]
    lines.insert(1, "|" + "---|" * width)
    return "\n".join(lines)
