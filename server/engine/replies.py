"""The one way a reply goes out: the assistant's, a flow's, an agent's or a scheduled one.

A reply is a message (``direction="out"``, status ``queued``), an outbox row the delivery task
works from, and a ``queued`` step in its journey, written in the caller's transaction. Once that
commits, the caller schedules ``server.tasks.deliver`` with the outbox id: delivery never sees
a row that might still roll back. A reply to a message is unique on it (``reply_to_id``), so a
turn redone after a crash cannot answer twice.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from gateway_bridge.events import storable
from server.schema import Message, Outbox
from server.services import journey

MAX_TEXT = 4096  # the longest text WhatsApp delivers as one message
_SENTENCE_END = re.compile(r"[.!?…](?:[\"')\]]*)\s+|\n+")


def write(s: Session, *, instance_id: int, conversation_id: int, text: str, author: str,
          reply_to_id: int | None = None, **fields: Any) -> tuple[Message, Outbox]:
    """Write one reply and its outbox row; ``fields`` are more Message columns (grounding,
    model, token counts). A text longer than WhatsApp takes is written as several messages,
    cut at sentence ends, which the outbox sends in order. Returns the first, flushed."""
    first: tuple[Message, Outbox] | None = None
    text = storable(text)  # a NUL (an API caller's, a model's) is a 500 on PostgreSQL
    for part in split(text) if fields.get("type", "text") == "text" else [text]:
        reply = Message(instance_id=instance_id, conversation_id=conversation_id,
                        direction="out", author=author, text=part, status="queued",
                        reply_to_id=reply_to_id if first is None else None, **fields)
        s.add(reply)
        s.flush()
        box = Outbox(message_id=reply.id)
        s.add(box)
        s.flush()
        first = first or (reply, box)
    assert first is not None
    return first


def split(text: str, limit: int = MAX_TEXT) -> list[str]:
    """A text in parts of at most ``limit`` characters, cut after a sentence or a line where
    one ends in reach, else at a space, else anywhere."""
    parts, rest = [], text.strip()
    while len(rest) > limit:
        window = rest[:limit + 1]
        ends = [m.end() for m in _SENTENCE_END.finditer(window) if m.end() <= limit]
        cut = ends[-1] if ends and ends[-1] > limit // 3 else (window.rfind(" ") + 1 or limit)
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    return [*parts, rest] if rest or not parts else parts


def queued(s: Session, reply: Message, **detail: object) -> None:
    """The reply's first journey step: it waits in the outbox for delivery."""
    journey.record(s, reply.id, "queued", **detail)
