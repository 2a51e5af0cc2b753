"""Read a document into Markdown-like text: headings as ``#``, tables as readable rows.

Markdown and text are read as written; HTML (BeautifulSoup), PDF (pypdf) and DOCX (python-docx)
are converted, so the chunker sees one shape. Errors say which file and why.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

MAX_BYTES = 20 * 1024 * 1024
# A DOCX is a zip: what it unpacks to, as its directory declares (zipfile reads no further), is
# capped too, or a 20 MB upload could unpack to gigabytes in the server's memory. Its XML is
# held about ten times over while parsed (1 GB of it took 2.1 GB), so XML has a cap of its own.
MAX_UNPACKED = 10 * MAX_BYTES
MAX_XML = 30 * 1024 * 1024


class DocumentError(ValueError):
    """A document cannot be ingested; the message says which and why."""


def _table(rows: Iterable[Iterable[str]]) -> str:
    """Rows as a Markdown table: readable as text, and kept whole by the chunker."""
    cleaned = [[" ".join(c.split()).replace("|", "/") for c in row] for row in rows]
    cleaned = [r for r in cleaned if any(r)]
    if not cleaned:
        return ""
    width = max(len(r) for r in cleaned)
    lines = ["| " + " | ".join(r + [""] * (width - len(r))) + " |" for r in cleaned]
    lines.insert(1, "|" + "---|" * width)
    return "\n".join(lines)


def _text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{name}: not UTF-8 text (byte {exc.start})") from None


def _words(el: object) -> str:
    return " ".join(el.get_text().split())  # type: ignore[attr-defined]


def _html(data: bytes, name: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    for junk in soup(["script", "style", "nav", "footer", "header", "form", "noscript"]):
        junk.decompose()
    blocks: list[str] = []
    for el in soup.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "table", "pre",
                             "blockquote"]):
        if el.find_parent(["table", "li"]) is not None and el.name != "li":
            continue  # inside a table or list item: its container speaks for it
        if el.name == "table":
            blocks.append(_table([_words(c) for c in tr.find_all(["th", "td"])]
                                 for tr in el.find_all("tr")))
        elif el.name.startswith("h"):
            blocks.append("#" * int(el.name[1]) + " " + _words(el))
        elif el.name == "li":
            blocks.append("- " + _words(el))
        else:
            blocks.append(_words(el))
    return "\n\n".join(b for b in blocks if b.strip())


def _pdf(data: bytes, name: str) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentError(f"{name}: the PDF is encrypted (password-protected); "
                                "upload an unprotected copy")
        pages = [page.extract_text() or "" for page in reader.pages]
    except DocumentError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError, zlib.error) as exc:  # what a damaged file makes pypdf raise
        raise DocumentError(f"{name}: corrupt or unreadable PDF ({type(exc).__name__})") from None
    if not "".join(pages).strip():
        raise DocumentError(f"{name}: the PDF has no text layer (a scan?); run OCR first")
    return "\n\n".join(p.strip() for p in pages if p.strip())


def _docx(data: bytes, name: str) -> str:
    import zipfile

    import docx
    from docx.document import Document as DocxDocument
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as packed:
            parts = packed.infolist()
        unpacked = sum(i.file_size for i in parts)
        xml = sum(i.file_size for i in parts if i.filename.endswith((".xml", ".rels")))
        document: DocxDocument | None = (docx.Document(io.BytesIO(data))
                                         if unpacked <= MAX_UNPACKED and xml <= MAX_XML else None)
    except (zipfile.BadZipFile, KeyError, ValueError, SyntaxError, EOFError, zlib.error,
            NotImplementedError) as exc:  # what a damaged zip or XML makes them raise
        raise DocumentError(f"{name}: corrupt or unreadable DOCX ({type(exc).__name__})") from None
    if document is None:
        raise DocumentError(f"{name}: unpacks to {unpacked} bytes ({xml} of XML), over the "
                            f"limits of {MAX_UNPACKED} ({MAX_XML} of XML)")
    blocks: list[str] = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            blocks.append(_table([c.text for c in row.cells] for row in item.rows))
        elif isinstance(item, Paragraph) and item.text.strip():
            style = (item.style.name if item.style is not None else "") or ""
            level = style.removeprefix("Heading ").strip()
            if style == "Title":
                blocks.append("# " + item.text.strip())
            elif style.startswith("Heading") and level.isdigit():
                blocks.append("#" * min(int(level), 6) + " " + item.text.strip())
            elif "List" in style:
                blocks.append("- " + item.text.strip())
            else:
                blocks.append(item.text.strip())
    return "\n\n".join(b for b in blocks if b)


READERS: dict[str, Callable[[bytes, str], str]] = {
    ".md": _text, ".markdown": _text, ".txt": _text, ".html": _html, ".htm": _html,
    ".pdf": _pdf, ".docx": _docx,
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
    if not data.strip():
        raise DocumentError(f"{name}: the file is empty")
    text = reader(data, name)
    if not text.strip():
        raise DocumentError(f"{name}: no text found in the document")
    return text


def read_text(path: Path) -> str:
    """The text of a document file."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise DocumentError(f"{path.name}: {size} bytes is over the {MAX_BYTES} byte limit")
    return parse(path.read_bytes(), path.name)
