"""Reading what comes back: which menu option an answer names, a value at a JSON path."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from flows.events import Matcher
from flows.nodes import MenuNode
from flows.text import normalize, readings

_NUMBER = re.compile(r"^(?:opcao |numero |n )?(\d{1,2})$")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def menu_text(node: MenuNode) -> str:
    """The menu's text, followed by its numbered options unless ``list_options`` is off."""
    if not node.list_options:
        return node.text
    lines = [f"{i}. {o.text}" for i, o in enumerate(node.options, 1)]
    return "\n".join([node.text, *lines]) if node.text else "\n".join(lines)


def pick_option(node: MenuNode, text: str, options: list[str], match: Matcher | None
                ) -> tuple[int | None, dict[str, Any], str]:
    """The option an answer names (``options`` are the texts the customer saw), by number, by
    text, then by meaning through ``match``; how, for the journey; and what answered it (the
    text, or one message of a burst)."""
    for reading in readings(text):  # a burst ("oi", then "2") by each of its lines too
        picked = _by_number_or_text(normalize(reading), options)
        if picked is not None:
            return picked[0], picked[1], reading
    said = normalize(text)
    if match is None or not said:
        return None, {"why": "no_match"}, text
    found = match(text, options)
    if found is None:
        return None, {"why": "no_match"}, text
    index, score = found
    if not 0 <= index < len(options) or score < node.min_score:
        return None, {"why": "no_match", "score": round(float(score), 4)}, text
    return index, {"matched": "by_meaning", "score": round(float(score), 4)}, text


def _by_number_or_text(said: str, options: list[str]) -> tuple[int, dict[str, Any]] | None:
    number = _NUMBER.match(said)
    if number and 1 <= int(number.group(1)) <= len(options):
        return int(number.group(1)) - 1, {"matched": "number"}
    for i, option in enumerate(options):
        if said and normalize(option) == said:
            return i, {"matched": "text"}
    # The option's first words, when they name one option only: "trocas" for "Trocas e
    # devoluções" (menus often say "digite 2 para trocas").
    starts = [i for i, o in enumerate(options) if said and f"{normalize(o)} ".startswith(
        f"{said} ")]
    return (starts[0], {"matched": "text"}) if len(starts) == 1 else None


def lookup(data: Any, path: str) -> tuple[bool, str]:
    """A JSON path ("pedido.status", "$.itens[0].nome") in the answer: (found, as text)."""
    path = path[1:] if path.startswith("$") else path
    for key, index in _PATH_PART.findall(path.lstrip(".")):
        if key and isinstance(data, Mapping) and key in data:
            data = data[key]
        elif index and isinstance(data, list) and int(index) < len(data):
            data = data[int(index)]
        else:
            return False, ""
    if data is None:
        return True, ""
    return True, data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)

