"""Every supported document kind parses into headings, paragraphs and readable table rows;
bad files say which and why."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

import pytest

from rag.chunking import chunk
from rag.parsing import MAX_BYTES, DocumentError, parse
from tests import docs_factory as make

HTML = """<html><head><style>p{}</style><script>alert(1)</script></head><body>
<nav>menu do site</nav><h1>Entregas</h1><h2>Prazos</h2>
<p>Entregamos em <b>São Paulo</b> em 1 dia útil. 😀</p>
<ul><li>Correios</li><li>Loggi</li></ul>
<table><tr><th>Região</th><th>Prazo</th></tr><tr><td>Sul</td><td>5 dias</td></tr></table>
</body></html>"""


def test_html_keeps_structure_and_drops_page_chrome() -> None:
    text = parse(HTML.encode(), "entregas.html")
    assert "menu do site" not in text and "alert" not in text
    chunks = chunk(text)
    assert chunks[0].headings == ("Entregas", "Prazos")
    assert "Entregamos em São Paulo em 1 dia útil. 😀" in text
    assert "- Correios" in text and "| Sul | 5 dias |" in text


def test_pdf_text_layer_with_accents() -> None:
    text = parse(make.pdf(["Trocas e devoluções", "Você tem 30 dias para trocar."]), "a.pdf")
    assert "Trocas e devoluções" in text and "30 dias" in text


def test_docx_headings_and_table_rows() -> None:
    data = make.docx("Política de trocas", [("Prazo", "Trocas em até 30 dias, ação simples.")],
                     [["Tamanho", "Busto"], ["P", "86 cm"]])
    chunks = chunk(parse(data, "politica.docx"))
    assert chunks[0].headings == ("Política de trocas", "Prazo")
    assert "Trocas em até 30 dias, ação simples." in chunks[0].text
    assert "| P | 86 cm |" in chunks[0].text


@pytest.mark.parametrize("name, data, why", [
    ("scan.pdf", make.pdf_without_text(), "no text layer"),
    ("secreto.pdf", make.pdf_encrypted(["segredo"]), "encrypted"),
    ("quebrado.pdf", b"%PDF-1.4\nthis is not a pdf body", "corrupt or unreadable PDF"),
    ("quebrado.docx", b"PK\x03\x04 not really a zip", "corrupt or unreadable DOCX"),
    ("vazio.md", b"  \n\n ", "empty"),
    ("latin1.txt", "ação".encode("latin-1"), "not UTF-8"),
    ("planilha.xlsx", b"PK\x03\x04", "unsupported type .xlsx"),
    ("grande.md", b"a" * (MAX_BYTES + 1), "over the"),
    ("so-estilo.html", b"<style>p{}</style><script>x()</script>", "no text found"),
])
def test_bad_files_say_which_and_why(name: str, data: bytes, why: str) -> None:
    with pytest.raises(DocumentError, match=why) as err:
        parse(data, name)
    assert str(err.value).startswith(name)


def _docx_with_body(write: Callable[[IO[bytes]], object]) -> bytes:
    """A real DOCX package whose word/document.xml is what ``write`` writes."""
    import io
    import zipfile

    import docx

    base, packed = io.BytesIO(), io.BytesIO()
    docx.Document().save(base)
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as z:
        for item in src.infolist():
            if item.filename != "word/document.xml":
                z.writestr(item, src.read(item))
        with z.open("word/document.xml", "w", force_zip64=True) as inner:
            write(inner)
    return packed.getvalue()


def test_a_docx_that_unpacks_to_gigabytes_is_refused_unread() -> None:
    from rag.parsing import MAX_XML

    def spaces(out: IO[bytes]) -> None:  # 1 GB of it from 1 MB took 2.1 GB of memory, then a 500
        for _ in range(MAX_XML // (1 << 20) + 1):
            out.write(b" " * (1 << 20))

    bomb = _docx_with_body(spaces)
    assert len(bomb) < MAX_BYTES  # small to upload
    with pytest.raises(DocumentError, match="unpacks to"):
        parse(bomb, "bomba.docx")


def test_a_docx_with_broken_xml_is_corrupt_not_a_crash() -> None:
    broken = _docx_with_body(lambda out: out.write(b"<w:document><w:body>"))
    with pytest.raises(DocumentError, match="corrupt or unreadable DOCX"):
        parse(broken, "quebrado.docx")


@pytest.mark.parametrize("name", ["prazos.pdf", "prazos.docx", "prazos.html"])
def test_a_damaged_file_is_refused_with_the_reason_whatever_the_damage(name: str) -> None:
    """Seeded random damage (bytes overwritten, the tail cut off): once, zlib, EOF, zip-version
    and pypdf loop errors escaped as 500s."""
    import random

    good = {"prazos.pdf": make.pdf(["Prazos", "Você tem 30 dias para trocar um produto."]),
            "prazos.docx": make.docx("Prazos", [("Troca", "Você tem 30 dias.")], [["P", "86"]]),
            "prazos.html": HTML.encode()}[name]
    rng = random.Random(12)
    for _ in range(1000):
        damaged = bytearray(good)
        for _ in range(rng.randint(1, 20)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        if rng.random() < 0.3:
            damaged = damaged[:rng.randrange(len(damaged))]
        try:
            assert parse(bytes(damaged), name).strip()
        except DocumentError as err:
            assert str(err).startswith(name)


def test_a_docx_of_too_many_xml_tags_is_refused_before_its_tree_is_built() -> None:
    """Each tag costs up to 250 bytes parsed: 5 MB of <a/>x took 255 MB; the caps count tags."""
    from rag.parsing import MAX_XML_TAGS

    dense = _docx_with_body(lambda out: out.write(
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        b"<w:body>" + b"<a/>x" * MAX_XML_TAGS + b"<w:p><w:r><w:t>fim</w:t></w:r></w:p>"
        b"</w:body></w:document>"))
    with pytest.raises(DocumentError, match=f"unpacks to more than {MAX_XML_TAGS} XML tags"):
        parse(dense, "denso.docx")


def test_a_docx_table_spanning_more_columns_than_word_allows_is_refused() -> None:
    """python-docx repeats a cell once per column it spans: 300 million ran past 5 minutes."""
    from rag.parsing import MAX_COLUMNS

    row = (f'<w:tbl><w:tr><w:tc><w:tcPr><w:gridSpan w:val="{MAX_COLUMNS + 1}"/></w:tcPr>'
           '<w:p><w:r><w:t>x</w:t></w:r></w:p></w:tc></w:tr></w:tbl>')
    body = ('<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            f"<w:body>{row}</w:body></w:document>").encode()
    with pytest.raises(DocumentError, match=f"spans over {MAX_COLUMNS} columns"):
        parse(_docx_with_body(lambda out: out.write(body)), "larga.docx")


@pytest.mark.parametrize("page, why", [
    (b"<p>a</p>" * 100_000, "tags or more, over the limit"),  # 1.2 KB a tag in BeautifulSoup
    (b"<ul>" + b"<li>item" * 5_000 + b"</ul>", "nest over 256 deep"),  # html.parser nests <li>
    (b"<blockquote>" * 200 + "Você tem 30 dias. ".encode() * 7_000, "text repeats past"),
])
def test_an_html_page_that_would_cost_gigabytes_is_refused(page: bytes, why: str) -> None:
    with pytest.raises(DocumentError, match=why):
        parse(b"<html><body>" + page + b"</body></html>", "pagina.html")


def test_a_pdf_page_of_too_many_tokens_is_refused() -> None:
    """pypdf holds a page's tokens as objects (150 bytes each): 2 million, from 10 KB, took
    300 MB; the cap is half that."""
    from rag.parsing import MAX_PDF_TOKENS

    with pytest.raises(DocumentError, match="holds more than it may"):
        parse(make.pdf(["a"] * (MAX_PDF_TOKENS // 2 + 1)), "tokens.pdf")
