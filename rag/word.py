"""DOCX into text: the package unpacked with bounded memory, then read by python-docx.

A DOCX is a zip: every member is inflated in 64 KiB pieces and counted (no size it declares is
trusted), MAX_UNPACKED in all; only its XML is kept. The XML is parsed whole (lxml): each tag
costs up to 250 bytes in the tree (1 million of <a/>x took 255 MB) and each character up to 4
bytes of text, held twice while the blocks are joined, so XML has two caps: MAX_XML bytes (19.4
MB of it in 19,999 passages rose 269 MB, parsed and ingested; 29 MB, 314) and MAX_XML_TAGS
(500,000 tags: 135 MB). A Word document of a few hundred pages has fewer of either.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

from rag.documents import MAX_BYTES, DocumentError, table

MAX_UNPACKED = 10 * MAX_BYTES
MAX_XML = 20 * 1024 * 1024
MAX_XML_TAGS = 500_000
MAX_COLUMNS = 63  # Word's own limit for a table
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
            blocks.append(table(_rows(item, name)))
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


def read_docx(data: bytes, name: str) -> str:
    """The text of a DOCX: headings as ``#``, lists as ``-``, tables as rows."""
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
