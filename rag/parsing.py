"""Read a document file into text; errors say which file and why."""

from __future__ import annotations

from pathlib import Path

SUPPORTED = {".md", ".markdown", ".txt"}
MAX_BYTES = 20 * 1024 * 1024


class DocumentError(ValueError):
    """A document cannot be ingested; the message says which and why."""


def read_text(path: Path) -> str:
    """The text of a Markdown or plain-text file."""
    if path.suffix.lower() not in SUPPORTED:
        raise DocumentError(f"{path.name}: unsupported type {path.suffix or '(none)'}; "
                            f"supported: {', '.join(sorted(SUPPORTED))}")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise DocumentError(f"{path.name}: {size} bytes is over the {MAX_BYTES} byte limit")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{path.name}: not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise DocumentError(f"{path.name}: the file is empty")
    return text
