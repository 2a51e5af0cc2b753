"""Read a document into Markdown-like text: headings as ``#``, tables as readable rows.

Markdown and text are read as written; HTML (BeautifulSoup), PDF (pypdf) and DOCX (python-docx)
are converted, so the chunker sees one shape. Errors say which file and why.
"""

from __future__ import annotations

import contextlib
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

MAX_BYTES = 20 * 1024 * 1024
# What reading one upload may cost is bounded by what it holds, not by its size: the largest
# uploads the caps below accept raised a server on the bundled models (590 MB idle) to 795-864
# MB at peak, parsing and ingesting included (rag.index caps the passages), where one DOCX
# took it to 1.8 GB, and a 20 MB HTML page 3 GB, before.
# - A DOCX is a zip: every member is inflated in 64 KiB pieces and counted (no size it declares
#   is trusted), MAX_UNPACKED in all; only its XML is kept. The XML is parsed whole (lxml):
#   each tag costs up to 250 bytes in the tree (1 million of <a/>x took 255 MB) and each
#   character up to 4 bytes of text, held twice while the blocks are joined, so XML has two
#   caps: MAX_XML bytes (19.4 MB of it in 19,999 passages rose 269 MB, parsed and ingested;
#   29 MB, 314) and MAX_XML_TAGS (500,000 tags: 135 MB). A Word document of a few hundred
#   pages has fewer of either.
# - An HTML page becomes a BeautifulSoup tree: 1.2 KB a tag (3 GB for 20 MB of <p>a</p>), so
#   MAX_HTML_TAGS (about 170 MB). Tags nest at most MAX_HTML_DEPTH deep, and a block's text
#   holds its nested blocks' text again, so their sum is capped at MAX_BYTES characters.
MAX_UNPACKED = 10 * MAX_BYTES
MAX_XML = 20 * 1024 * 1024
MAX_XML_TAGS = 500_000
MAX_COLUMNS = 63  # Word's own limit for a table
MAX_HTML_TAGS = 150_000  # counted as "<", closing tags included
MAX_HTML_DEPTH = 256
# pypdf parses a page's content into Python objects, about 150 bytes a token: its own cap of 2
# million tokens a page let a 10 KB PDF take 300 MB (and 23 s); a page of text has thousands.
MAX_PDF_TOKENS = 1_000_000
_SPACES = re.compile(r"\s+")  # whitespace as str.split() finds it


class DocumentError(ValueError):
    """A document cannot be ingested; the message says which and why."""


def _table(rows: Iterable[Iterable[str]]) -> str:
    """Rows as a Markdown table: readable as text, and kept whole by the chunker."""
    cleaned = [[_squash(c).replace("|", "/") for c in row] for row in rows]
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


def _squash(text: str) -> str:
    """``" ".join(text.split())`` without the list of every word (200 MB for a 20 MB text)."""
    return _SPACES.sub(" ", text).strip()


def _words(el: object) -> str:
    return _squash(el.get_text())  # type: ignore[attr-defined]


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
            blocks.append(_table([kept(_words(c)) for c in tr.find_all(["th", "td"])]
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


_CHUNK = 64 * 1024
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip member's local header, up to its name
_XML = (".xml", ".rels")


def _inflated(data: memoryview, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """What a zip member really unpacks to, 64 KiB at a time, whatever sizes it declares.

    Not ``ZipFile.read``: it asks zlib for up to 2 GB in one call and only then cuts to the
    declared size (a member declaring 5,000 bytes that inflates to 1.2 GB took 1.9 GB).
    """
    if info.flag_bits & 0x1:
        raise zipfile.BadZipFile(f"{info.filename} is encrypted")
    magic, *_, name_len, extra_len = _LOCAL_HEADER.unpack_from(data, info.header_offset)
    if magic != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"no local header for {info.filename}")
    start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
    raw = data[start:start + info.compress_size]  # a view: bounded by the upload itself
    if info.compress_type == zipfile.ZIP_STORED:
        for at in range(0, len(raw), _CHUNK):
            yield bytes(raw[at:at + _CHUNK])
        return
    if info.compress_type != zipfile.ZIP_DEFLATED:  # what Word and every other writer use
        raise NotImplementedError(f"compression method {info.compress_type}")
    inflate = zlib.decompressobj(-zlib.MAX_WBITS)
    for at in range(0, len(raw), _CHUNK):
        pending: bytes | memoryview = raw[at:at + _CHUNK]
        while not inflate.eof:
            out = inflate.decompress(pending, _CHUNK)
            if out:
                yield out
            pending = inflate.unconsumed_tail
            if not pending and len(out) < _CHUNK:
                break
        if inflate.eof:
            return
    raise EOFError(f"{info.filename}: compressed data cut short")


def _too_big(name: str, what: str) -> DocumentError:
    return DocumentError(f"{name}: unpacks to {what}, over the limits of {MAX_UNPACKED} bytes "
                         f"({MAX_XML} of XML, in at most {MAX_XML_TAGS} tags)")


def _unpack(data: bytes, name: str) -> io.BytesIO:
    """The package rebuilt (stored, uncompressed) from what its members really unpack to.

    Every member is inflated in bounded chunks and counted; passing MAX_UNPACKED in all, or
    MAX_XML of XML, or MAX_XML_TAGS, stops at once. python-docx then reads only these checked
    bytes: a member's size and CRC can be forged to describe its first bytes only, so the
    original package is never handed on. Members other than XML are checked and counted but
    kept empty: text needs none of them (images, fonts, embeddings), and an XML part renamed
    to dodge the XML caps is then empty too, so refused, not parsed.
    """
    fresh = io.BytesIO()
    view = memoryview(data)
    with zipfile.ZipFile(io.BytesIO(data)) as packed, zipfile.ZipFile(fresh, "w") as out:
        members = packed.infolist()
        if len({m.filename for m in members}) != len(members):
            raise zipfile.BadZipFile("a member name appears twice")
        # What the directory declares is a first, free check; what is counted below decides.
        declared = sum(m.file_size for m in members)
        declared_xml = sum(m.file_size for m in members if m.filename.endswith(_XML))
        if declared > MAX_UNPACKED or declared_xml > MAX_XML:
            raise _too_big(name, f"{declared} bytes ({declared_xml} of XML)")
        total = xml = tags = 0
        for member in members:
            is_xml = member.filename.endswith(_XML)
            size = crc = 0
            with out.open(member.filename, "w") as kept:
                for piece in _inflated(view, member):
                    size += len(piece)
                    total += len(piece)
                    xml += len(piece) if is_xml else 0
                    if total > MAX_UNPACKED or xml > MAX_XML:
                        raise _too_big(name, f"more than {total} bytes ({xml} of XML)")
                    if size > member.file_size:
                        raise DocumentError(
                            f"{name}: corrupt or unreadable DOCX ({member.filename} unpacks "
                            f"past the {member.file_size} bytes it declares)")
                    crc = zlib.crc32(piece, crc)
                    if is_xml:
                        tags += piece.count(b"<")
                        if tags > MAX_XML_TAGS:
                            raise _too_big(name, f"more than {MAX_XML_TAGS} XML tags")
                        kept.write(piece)
            if (size, crc) != (member.file_size, member.CRC):
                raise DocumentError(f"{name}: corrupt or unreadable DOCX ({member.filename}: "
                                    "size or CRC differs from what it declares)")
    fresh.seek(0)
    return fresh


def _rows(table: Any, name: str) -> Iterator[list[str]]:
    """A table's rows as python-docx's ``row.cells`` texts them, a merged cell's text repeated
    in each grid column it spans, but at most MAX_COLUMNS: python-docx makes a tuple as long
    as any span declared (300 million, from 36 KB, ran past 5 minutes), and walks up the rows
    again for every cell of a vertical merge (quadratic in the rows)."""
    from docx.text.paragraph import Paragraph

    above: dict[int, tuple[str, int]] = {}  # grid column -> (text, span) of the cell there
    for tr in table.tr_lst:
        here: dict[int, tuple[str, int]] = {}
        cells: list[str] = []
        column = tr.grid_before
        for tc in tr.tc_lst:
            if tc.vMerge == "continue":  # the cell above continues down here, as it was
                if column not in above:
                    raise ValueError(f"no cell above grid column {column} to continue")
                text, span = above[column]
            else:
                text = "\n".join(Paragraph(p, table).text for p in tc.p_lst)
                span = tc.grid_span
            if column + max(span, tc.grid_span) > MAX_COLUMNS:
                raise DocumentError(f"{name}: a table row spans over {MAX_COLUMNS} columns, "
                                    "more than Word allows")
            here[column] = (text, span)
            cells += [text] * span
            column += tc.grid_span
        above = here
        yield cells


def _blocks(document: Any, name: str) -> list[str]:
    """The body's paragraphs and tables as blocks of text, in order (as python-docx's
    ``iter_inner_content``, without its list of every element: 400 MB for 4.8 million)."""
    from docx.oxml.ns import qn
    from docx.text.paragraph import Paragraph

    blocks: list[str] = []
    # A style's name by its id, looked up once: python-docx searches the styles part for every
    # paragraph (93% of the time of a long document went there).
    styles: dict[str | None, str] = {}
    body = document.element.body
    element = body[0] if body is not None and len(body) else None
    while element is not None:
        item, following = element, element.getnext()
        body.remove(item)  # what is read is let go, so the tree shrinks as the text grows
        element = following
        if item.tag == qn("w:tbl"):
            blocks.append(_table(_rows(item, name)))
            continue
        if item.tag != qn("w:p"):
            continue
        paragraph = Paragraph(item, document)
        text = paragraph.text.strip()
        if not text:
            continue
        if paragraph._p.style not in styles:
            found = paragraph.style
            styles[paragraph._p.style] = (found.name if found is not None else "") or ""
        style = styles[paragraph._p.style]
        level = style.removeprefix("Heading ").strip()
        if style == "Title":
            blocks.append("# " + text)
        elif style.startswith("Heading") and level.isdigit():
            blocks.append("#" * min(int(level), 6) + " " + text)
        elif "List" in style:
            blocks.append("- " + text)
        else:
            blocks.append(text)
    return blocks


def _docx(data: bytes, name: str) -> str:
    import docx
    from docx.exceptions import PythonDocxError

    try:
        blocks = _blocks(docx.Document(_unpack(data, name)), name)
    except DocumentError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, SyntaxError, EOFError, zlib.error,
            NotImplementedError, struct.error, PythonDocxError) as exc:  # a damaged zip or XML
        raise DocumentError(f"{name}: corrupt or unreadable DOCX ({type(exc).__name__})") from None
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
