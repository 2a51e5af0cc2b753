"""Every text a page shows in pt-BR has its English line: a page switched to English never
shows a Portuguese sentence because someone forgot the catalog."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from server.web import i18n

ROOT = Path(__file__).parent.parent
SOURCES = [
    (ROOT / "server" / "templates", [("**.html", "jinja2.ext:babel_extract")]),
    (ROOT / "server" / "routes" / "pages", [("**.py", "python")]),
    (ROOT / "server" / "web", [("**.py", "python")]),
    (ROOT / "server" / "routes", [("auth.py", "python")]),
]
KEYWORDS = {"_": None, "N_": None}


def texts() -> set[str]:
    found = set()
    for folder, method_map in SOURCES:
        for _file, _line, message, _comments, _context in extract_from_dir(
                folder, method_map, keywords=KEYWORDS):
            if isinstance(message, str) and message.strip():
                found.add(message)
    return found


def test_every_page_text_has_an_english_line() -> None:
    shown = texts()
    assert "Conversas" in shown  # the extraction reads the templates at all
    missing = sorted(shown - i18n.catalog("en").keys())
    assert not missing, "add to server/web/locale/en.po:\n" + "\n".join(missing)


def test_english_is_english_and_pt_br_is_the_default() -> None:
    en, pt = i18n.translator("en"), i18n.translator("pt-BR")
    assert en("Conversas") == "Conversations"
    assert pt("Conversas") == "Conversas"
    assert i18n.translator("xx")("Conversas") == "Conversas"  # an unknown language: pt-BR
