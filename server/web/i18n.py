"""pt-BR first, English available: the pages' texts are written in Portuguese and
``locale/en.po`` says each in English.

The msgids are the pt-BR texts themselves, so a page reads naturally in its template and a text
with no translation yet falls back to Portuguese rather than to a key. Babel reads the .po file
(no compile step, no .mo in the tree) and extracts the texts in the test that keeps the catalog
complete (``tests/test_i18n.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

LANGUAGES = {"pt-BR": "Português", "en": "English"}
DEFAULT = "pt-BR"
COOKIE = "lang"
LOCALE_DIR = Path(__file__).parent / "locale"

Gettext = Callable[[str], str]


@cache
def catalog(language: str) -> dict[str, str]:
    """msgid → text for one language; empty for pt-BR (the msgids are pt-BR)."""
    path = LOCALE_DIR / f"{language}.po"
    if language == DEFAULT or not path.exists():
        return {}
    with path.open("rb") as f:
        po = read_po(f, locale=language.replace("-", "_"))
    return {str(m.id): str(m.string) for m in po if m.id and m.string and not m.fuzzy}


def chosen(cookie: str | None) -> str:
    """The language a browser asked for (the ``lang`` cookie), or pt-BR."""
    return cookie if cookie in LANGUAGES else DEFAULT


def translator(language: str) -> Gettext:
    """``_`` for templates and page routes: ``_("Conversas")`` → "Conversations" in English.

    Texts may carry ``{name}`` fields, filled after translation: ``_("{n} contatos").format(n=3)``.
    """
    table = catalog(chosen(language))
    return lambda text: table.get(text) or text
