"""Split a Markdown or plain-text document into passages that follow headings and paragraphs.

A passage keeps its heading path and position, and its text exactly as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_WORDS = 100
MAX_WORDS = 200

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


@dataclass(frozen=True)
class Chunk:
    text: str
    headings: tuple[str, ...]
    position: int

    @property
    def heading_path(self) -> str:
        return " > ".join(self.headings)


def _blocks(text: str) -> list[tuple[tuple[str, ...], str]]:
    """Paragraphs (tables and lists stay whole) with the heading path above each."""
    path: list[tuple[int, str]] = []
    blocks: list[tuple[tuple[str, ...], str]] = []
    current: list[str] = []

    def flush() -> None:
        if current and "".join(current).strip():
            blocks.append((tuple(h for _, h in path), "\n".join(current).strip()))
        current.clear()

    for line in text.splitlines():
        match = _HEADING.match(line)
        if match:
            flush()
            level = len(match.group(1))
            path[:] = [(lvl, h) for lvl, h in path if lvl < level] + [(level, match.group(2))]
        elif line.strip():
            current.append(line.rstrip())
        else:
            flush()
    flush()
    return blocks


def _split_long(block: str) -> list[str]:
    """A block over MAX_WORDS, cut at sentence (or line) ends."""
    pieces = block.splitlines() if block.lstrip().startswith("|") else _SENTENCE_END.split(block)
    out: list[str] = []
    current: list[str] = []
    for piece in pieces:
        if current and len(" ".join(current + [piece]).split()) > MAX_WORDS:
            out.append(("\n" if "\n" in block and block.lstrip().startswith("|") else " ")
                       .join(current))
            current = []
        current.append(piece)
    if current:
        out.append(("\n" if block.lstrip().startswith("|") else " ").join(current))
    return out


def chunk(text: str) -> list[Chunk]:
    """Passages of about MIN_WORDS to MAX_WORDS words that never cross a top-level section."""
    chunks: list[Chunk] = []
    buf: list[str] = []
    buf_headings: tuple[str, ...] = ()

    def emit() -> None:
        if buf:
            chunks.append(Chunk("\n\n".join(buf), buf_headings, len(chunks)))
            buf.clear()

    for headings, block in _blocks(text):
        for piece in _split_long(block) if len(block.split()) > MAX_WORDS else [block]:
            words = sum(len(b.split()) for b in buf)
            same_section = headings[:2] == buf_headings[:2]
            if buf and (not same_section or words >= MIN_WORDS
                        or words + len(piece.split()) > MAX_WORDS):
                emit()
            if not buf:
                buf_headings = headings
            buf.append(piece)
    emit()
    return chunks
