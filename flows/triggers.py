"""Which flow an incoming text starts: the flow whose trigger keyword it holds, else the
instance's default flow.

A keyword matches as whole words anywhere in the text, ignoring case, accents and punctuation
("Oi! Quero trocar" holds "oi" and "quero trocar", not "troca"). When several flows match, the
longest keyword wins (it is the more specific), then the flow listed first. The caller asks only
when the conversation has no live flow session: a running flow takes the customer's messages.
"""

from __future__ import annotations

from collections.abc import Sequence

from flows.nodes import Flow
from flows.text import normalize


def matching_trigger(text: str, flow: Flow) -> str | None:
    """The longest of the flow's keywords the text holds, or None."""
    said = f" {normalize(text)} "
    best: str | None = None
    for keyword in flow.triggers:
        word = normalize(keyword)
        if word and f" {word} " in said and (best is None or len(word) > len(normalize(best))):
            best = keyword
    return best


def pick_flow(text: str, flows: Sequence[Flow], default: str | None = None) -> Flow | None:
    """The flow ``text`` starts: by trigger keyword, else the one whose id is ``default`` (the
    instance's default flow), else None."""
    best: tuple[int, Flow] | None = None
    for flow in flows:
        keyword = matching_trigger(text, flow)
        if keyword is not None and (best is None or len(normalize(keyword)) > best[0]):
            best = (len(normalize(keyword)), flow)
    if best is not None:
        return best[1]
    return next((f for f in flows if f.id == default), None) if default else None
