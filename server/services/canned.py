"""Canned responses: the answers a team gives every day, written once by a manager and sent by
an agent with their shortcut ("/prazo") or picked from the list.

A shortcut is a word of letters, digits, "-" and "_" (kept without its slash, in lower case), so
"/Prazo" and "prazo" are one. Expansion is exact: a message that is only a shortcut becomes its
text, and anything else is sent as written; a slash inside a sentence is never touched.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.schema import CannedResponse
from server.services.contact_data import Conflict, Invalid, flush_or_conflict

SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_TEXT = 4096  # one WhatsApp message


def shortcut_of(text: str) -> str:
    """The shortcut as kept, or ``Invalid`` (field ``shortcut``) saying what is wrong."""
    key = text.strip().lstrip("/").lower()
    if not SHORTCUT.match(key):
        raise Invalid("a shortcut is one word of letters, digits, - or _ (up to 32), like "
                      "/prazo", "shortcut")
    return key


def _text(text: str) -> str:
    clean = text.strip()
    if not clean:
        raise Invalid("write the answer's text", "text")
    if len(clean) > MAX_TEXT:
        raise Invalid(f"at most {MAX_TEXT} characters ({len(clean)} given)", "text")
    return clean


def listing(s: Session, starting: str = "") -> list[CannedResponse]:
    """All, by shortcut; or those whose shortcut starts with ``starting`` (a slash or not)."""
    query = select(CannedResponse).order_by(CannedResponse.shortcut)
    prefix = starting.strip().lstrip("/").lower()
    if prefix:
        query = query.where(CannedResponse.shortcut.startswith(prefix, autoescape=True))
    return list(s.scalars(query))


def get(s: Session, canned_id: int) -> CannedResponse:
    found = s.get(CannedResponse, canned_id)
    if found is None:
        raise LookupError(f"no canned response {canned_id}")
    return found


def create(s: Session, shortcut: str, text: str) -> CannedResponse:
    row = CannedResponse(shortcut=shortcut_of(shortcut), text=_text(text))
    s.add(row)
    flush_or_conflict(s, f"the shortcut /{row.shortcut} is taken", "shortcut")
    return row


def update(s: Session, canned_id: int, shortcut: str | None = None,
           text: str | None = None) -> CannedResponse:
    row = get(s, canned_id)
    if shortcut is not None:
        row.shortcut = shortcut_of(shortcut)
    if text is not None:
        row.text = _text(text)
    flush_or_conflict(s, f"the shortcut /{row.shortcut} is taken", "shortcut")
    return row


def delete(s: Session, canned_id: int) -> None:
    s.delete(get(s, canned_id))
    s.flush()


def expand(s: Session, text: str) -> str:
    """The text to send: a message that is only a known shortcut becomes its answer."""
    word = text.strip()
    if not word.startswith("/") or " " in word:
        return text
    try:
        key = shortcut_of(word)
    except Invalid:
        return text
    found = s.scalar(select(CannedResponse.text).where(CannedResponse.shortcut == key))
    return found if found is not None else text


__all__ = ["Conflict", "Invalid", "create", "delete", "expand", "get", "listing", "update"]
