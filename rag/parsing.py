"""Read a document into Markdown-like text: headings as ``#``, tables as readable rows.

Markdown and text are read as written; HTML (BeautifulSoup), PDF (pypdf) and DOCX (python-docx,
``rag.word``) are converted, so the chunker sees one shape. Errors say which file and why.
"""

from __future__ import annotations

import contextlib
import io
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.documents import MAX_BYTES, DocumentError, squash, table
from rag.word import MAX_COLUMNS, MAX_UNPACKED, MAX_XML, MAX_XML_TAGS, read_docx

__all__ = ["MAX_BYTES", "MAX_COLUMNS", "MAX_HTML_DEPTH", "MAX_HTML_TAGS", "MAX_PDF_TOKENS",
           "MAX_UNPACKED", "MAX_XML", "MAX_XML_TAGS", "READERS", "DocumentError", "parse",
           "read_text"]

# What reading one upload may cost is bounded by what it holds, not by its size: the largest
# uploads the caps below (and rag.word's, for DOCX) accept raised a server on the bundled
# models (590 MB idle) to 795-864 MB at peak, parsing and ingesting included (rag.index caps
# the passages), where one DOCX took it to 1.8 GB, and a 20 MB HTML page 3 GB, before.
# - An HTML page becomes a BeautifulSoup tree: 1.2 KB a tag (3 GB for 20 MB of <p>a</p>), so
#   MAX_HTML_TAGS (about 170 MB). Tags nest at most MAX_HTML_DEPTH deep, and a block's text
#   holds its nested blocks' text again, so their sum is capped at MAX_BYTES characters.
MAX_HTML_TAGS = 150_000  # counted as "<", closing tags included
MAX_HTML_DEPTH = 256
# pypdf parses a page's content into Python objects, about 150 bytes a token: its own cap of 2
# million tokens a page let a 10 KB PDF take 300 MB (and 23 s); a page of text has thousands.
MAX_PDF_TOKENS = 1_000_000


def _text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{name}: not UTF-8 text (byte {exc.start})") from None


def _words(el: object) -> str:
    return squash(el.get_text())  # type: ignore[attr-defined]


def _html(data: bytes, name: str) -> str:
    from bs4 import BeautifulSoup
    from bs4.element import AttributeDict, Tag

    class Unkept(AttributeDict):
        """No attributes are kept: nothing here reads them, and a tag's attributes took
        more memory than the tag (3 KB a tag, with 100 bytes of them)."""

        def __setitem__(self, key: str, value: Any) -> None:
            pass

    tags = data.count(b"<")  # at least as many as the tags in it
    if tags > MAX_HTML_TAGS:
        raise DocumentError(f"{name}: has {tags} tags or more, over the limit of "
                            f"{MAX_HTML_TAGS} for a page")
    soup = BeautifulSoup(data, "html.parser", attribute_dict_class=Unkept)
    for junk in soup(["script", "style", "nav", "footer", "header", "form", "noscript"]):
        junk.decompose()
    # How deep each tag is, and whether a table or list item holds it, in one pass (asking
    # each tag's ancestors is the depth times over; html.parser nests unclosed <p> and <li>).
    depth: dict[int, int] = {id(soup): 0}
    held: dict[int, bool] = {id(soup): False}
    for el in soup.descendants:
        if isinstance(el, Tag) and el.parent is not None:
            up = el.parent
            depth[id(el)] = depth[id(up)] + 1
            held[id(el)] = held[id(up)] or up.name in ("table", "li")
            if depth[id(el)] > MAX_HTML_DEPTH:
                raise DocumentError(f"{name}: tags nest over {MAX_HTML_DEPTH} deep, the limit "
                                    "(unclosed <p> or <li> tags nest too)")
    blocks: list[str] = []
    size = 0  # a block holds the blocks nested in it too, so the text can repeat: bounded

    def kept(text: str) -> str:
        nonlocal size
        size += len(text)
        if size > MAX_BYTES:
            raise DocumentError(f"{name}: its blocks nest so that its text repeats past "
                                f"{MAX_BYTES} characters, the limit")
        return text

    for el in soup.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "table", "pre",
                             "blockquote"]):
        if held[id(el)] and el.name != "li":
            continue  # inside a table or list item: its container speaks for it
        if el.name == "table":
            blocks.append(table([kept(_words(c)) for c in tr.find_all(["th", "td"])]
                                 for tr in el.find_all("tr")))
        elif el.name.startswith("h"):
            blocks.append("#" * int(el.name[1]) + " " + kept(_words(el)))
        elif el.name == "li":
            blocks.append("- " + kept(_words(el)))
        else:
            blocks.append(kept(_words(el)))
    return "\n\n".join(b for b in blocks if b.strip())


def _pdf(data: bytes, name: str) -> str:
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PyPdfError

    limits: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    with contextlib.suppress(ImportError):  # pypdf 7 on: a page's tokens are capped
        from pypdf import apply_configuration

        limits = apply_configuration(stream_parsing_work_maximum_count=MAX_PDF_TOKENS)
    try:
        with limits:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                raise DocumentError(f"{name}: the PDF is encrypted (password-protected); "
                                    "upload an unprotected copy")
            pages = [page.extract_text() or "" for page in reader.pages]
    except DocumentError:
        raise
    except LimitReachedError as exc:
        raise DocumentError(f"{name}: the PDF holds more than it may ({exc})") from None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError, zlib.error) as exc:  # what a damaged file makes pypdf raise
        raise DocumentError(f"{name}: corrupt or unreadable PDF ({type(exc).__name__})") from None
    if not "".join(pages).strip():
        raise DocumentError(f"{name}: the PDF has no text layer (a scan?); run OCR first")
    return "\n\n".join(p.strip() for p in pages if p.strip())


READERS: dict[str, Callable[[bytes, str], str]] = {
    ".md": _text, ".markdown": _text, ".txt": _text, ".html": _html, ".htm": _html,
    ".pdf": _pdf, ".docx": read_docx,
}


def parse(data: bytes, name: str) -> str:
    """The text of a document given its bytes and file name (the suffix picks the reader)."""
    suffix = Path(name).suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        raise DocumentError(f"{name}: unsupported type {suffix or '(none)'}; "
                            f"supported: {', '.join(sorted(READERS))}")
    if len(data) > MAX_BYTES:
        raise DocumentError(f"{name}: {len(data)} bytes is over the {MAX_BYTES} byte limit")
    if not data or data.isspace():  # as ``not data.strip()``, without a copy of the upload
        raise DocumentError(f"{name}: the file is empty")
    text = reader(data, name)
    if not text or text.isspace():
        raise DocumentError(f"{name}: no text found in the document")
    return text


def read_text(path: Path) -> str:
    """The text of a document file."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise DocumentError(f"{path.name}: {size} bytes is over the {MAX_BYTES} byte limit")
    return parse(path.read_bytes(), path.name)
