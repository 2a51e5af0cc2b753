"""Split a Markdown or plain-text document into passages that follow headings and paragraphs.

A passage keeps its heading path and position, and its text exactly as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from rag.units import separator

MIN_WORDS = 100
MAX_WORDS = 200

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_WORD = re.compile(r"\S+")  # a word as str.split() finds it
_PIECE = 1 << 20  # characters split into lines at a time
_SHORT = 1 << 14  # characters whose words are counted at once


@dataclass(frozen=True)
class Chunk:
    text: str
    headings: tuple[str, ...]
    position: int

    @property
    def heading_path(self) -> str:
        return " > ".join(self.headings)


def _lines(text: str) -> Iterator[str]:
    """``text.splitlines()``, a piece at a time: the whole list for 20 MB of short lines took
    400 MB. Pieces end just after a newline, so no line (nor a \\r\\n) is cut."""
    start = 0
    while start < len(text):
        end = text.find("\n", start + _PIECE)
        end = len(text) if end < 0 else end + 1
        yield from text[start:end].splitlines()
        start = end


def _blocks(text: str) -> Iterator[tuple[tuple[str, ...], str]]:
    """Paragraphs (tables and lists stay whole) with the heading path above each."""
    path: list[tuple[int, str]] = []
    current: list[str] = []
    for line in _lines(text):
        match = _HEADING.match(line)
        if match or not line.strip():
            if current and "".join(current).strip():
                yield tuple(h for _, h in path), "\n".join(current).strip()
            current.clear()
        if match:
            level = len(match.group(1))
            path[:] = [(lvl, h) for lvl, h in path if lvl < level] + [(level, match.group(2))]
        elif line.strip():
            current.append(line.rstrip())
    if current and "".join(current).strip():
        yield tuple(h for _, h in path), "\n".join(current).strip()


def _count_words(text: str, most: int) -> int:
    """``len(text.split())`` if that is at most ``most``, else a number above ``most``, found
    without a list of every word of a long text."""
    if len(text) <= _SHORT:
        return len(text.split())
    return sum(1 for _ in islice(_WORD.finditer(text), most + 1))


def _sentences(block: str) -> Iterator[str]:
    """``_SENTENCE_END.split(block)``, one at a time."""
    start = 0
    for end in _SENTENCE_END.finditer(block):
        yield block[start:end.start()]
        start = end.end()
    yield block[start:]


def _cut(piece: str) -> Iterator[str]:
    """A sentence (or table row) over MAX_WORDS words, cut every MAX_WORDS words: one
    passage of a whole 20 MB text without a full stop would be embedded cut to the model's
    window anyway, after costing hundreds of MB on the way."""
    if _count_words(piece, MAX_WORDS) <= MAX_WORDS:
        yield piece
        return
    words = _WORD.finditer(piece)
    for first in words:
        end = first.end()
        for word in islice(words, MAX_WORDS - 1):
            end = word.end()
        yield piece[first.start():end]


def _table_head(block: str) -> list[str]:
    """A Markdown table's header row and its ``|---|`` line (found without splitting a long
    block), or nothing where the block has no such header."""
    start = len(block) - len(block.lstrip())
    first = block.find("\n", start)
    if first < 0:
        return []
    second = block.find("\n", first + 1)
    rule = block[first + 1:second if second >= 0 else len(block)].strip()
    if not separator(rule):  # what rag.units reads as a header's separator: one definition
        return []
    return [block[start:first].rstrip(), rule]


def _split_long(block: str) -> Iterator[str]:
    """A block over MAX_WORDS, cut at sentence (or line) ends. Every piece of a long table
    after the first starts with the table's header again: a row without its column names
    ("| 300 g | R$ 64,90 |") answers nothing."""
    table = block.lstrip().startswith("|")
    head = _table_head(block) if table else []
    head_words = sum(len(line.split()) for line in head)
    if head_words > MAX_WORDS // 2:  # a header that would crowd out the rows: not repeated
        head, head_words = [], 0
    pieces = (cut for piece in (_lines(block) if table else _sentences(block))
              for cut in _cut(piece))
    current: list[str] = []
    words = 0
    for piece in pieces:
        n = _count_words(piece, MAX_WORDS)
        if current and words + n > MAX_WORDS:  # as len(" ".join(current + [piece]).split())
            yield ("\n" if "\n" in block and table else " ").join(current)
            current, words = list(head), head_words
        current.append(piece)
        words += n
    if current:
        yield ("\n" if table else " ").join(current)


def iter_chunks(text: str) -> Iterator[Chunk]:
    """Passages of about MIN_WORDS to MAX_WORDS words that never cross a top-level section,
    one at a time (a caller that stops early never holds the rest)."""
    buf: list[str] = []
    buf_headings: tuple[str, ...] = ()
    words = position = 0
    for headings, block in _blocks(text):
        long = _count_words(block, MAX_WORDS) > MAX_WORDS
        for piece in _split_long(block) if long else [block]:
            n = _count_words(piece, MAX_WORDS)
            same_section = headings[:2] == buf_headings[:2]
            if buf and (not same_section or words >= MIN_WORDS or words + n > MAX_WORDS):
                yield Chunk("\n\n".join(buf), buf_headings, position)
                buf.clear()
                words, position = 0, position + 1
            if not buf:
                buf_headings = headings
            buf.append(piece)
            words += n
    if buf:
        yield Chunk("\n\n".join(buf), buf_headings, position)


def chunk(text: str) -> list[Chunk]:
    """Passages of about MIN_WORDS to MAX_WORDS words that never cross a top-level section."""
    return list(iter_chunks(text))
