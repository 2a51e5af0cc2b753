"""Text as flows compare and fill it: customer text normalized for matching, and ``{{...}}``
templates, both rendered and read for the variables they use (validation needs the latter)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

# A variable a template or a condition names: a namespace and a key.
NAMESPACES = ("contact", "instance", "fields", "vars")
VARIABLE = re.compile(r"^(contact|instance|fields|vars)\.[A-Za-z0-9_-]+$")
# What the caller always knows; ``fields.<key>`` and ``vars.<key>`` are checked per flow.
BUILTIN = frozenset({"contact.name", "contact.phone", "instance.name"})
# Where a flow may store a value: custom fields (kept on the contact) or the session's own vars.
CAPTURE = re.compile(r"^(fields|vars)\.[A-Za-z0-9_-]+$")

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def normalize(text: str) -> str:
    """Lower case, accents dropped, punctuation and emoji as single spaces: "Olá, TROCAS!" and
    "ola trocas" compare equal, as a customer typing on a phone expects."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return _NOT_WORD.sub(" ", bare).strip()


def readings(text: str) -> list[str]:
    """The ways to read a customer's turn: the whole text, then, for a burst of messages (a
    turn joins them one per line), each line from the last. "oi" then "2" sent within the
    debounce is the answer "2", and of "2" then "3" the later one is the customer's last word;
    read only whole, the burst would match nothing and the menu would be asked again."""
    lines = burst(text)
    return [text, *reversed(lines)] if len(lines) > 1 else [text]


def burst(text: str) -> list[str]:
    """The messages of a turn, one per line, blank ones left out."""
    return [line for line in (part.strip() for part in text.splitlines()) if line]


def after(text: str, reading: str) -> str:
    """What a burst says after the line ``reading`` answered: "2", then "AU20250417" within one
    debounce answer the menu and then the question it leads to. Nothing for the whole text."""
    lines = burst(text)
    if reading == text or reading not in lines:
        return ""
    return "\n".join(lines[len(lines) - lines[::-1].index(reading):])


def template_problem(template: str) -> str | None:
    """Why a template cannot be read (an unclosed ``{{``, a badly named variable), or None."""
    for name in _PLACEHOLDER.findall(template):
        if not VARIABLE.match(name):
            return (f"{{{{{name}}}}} is not a variable: write namespace.key, the namespace one "
                    f"of {', '.join(NAMESPACES)}")
    rest = _PLACEHOLDER.sub("", template)
    if "{{" in rest or "}}" in rest:
        return "has a '{{' or '}}' that does not enclose a variable"
    return None


def variables(template: str) -> list[str]:
    """The variables a template uses, in order of appearance (the well-formed ones)."""
    return [n for n in _PLACEHOLDER.findall(template) if VARIABLE.match(n)]


_EMPTY = "\x00"  # where a variable had no value, until the space before it is taken out too
_GAP = re.compile(r"[ \t]*\x00(?=[ \t]|[!?.,;:]|$)|\x00")


def render(template: str, values: Mapping[str, str]) -> str:
    """The template with each ``{{name}}`` replaced by its value; a variable without a value is
    the empty string (validation has already rejected names no one can set), and so is the
    space before it: "Olá {{contact.name}}!" reads "Olá!" for a customer with no name, not
    "Olá !"."""
    if "{{" not in template:
        return template
    filled = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), "") or _EMPTY, template)
    return _GAP.sub("", filled).lstrip(" \t") if _EMPTY in filled else filled
