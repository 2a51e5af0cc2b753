"""The one way a reply goes out: the assistant's, a flow's, an agent's or a scheduled one.

A reply is a message (``direction="out"``, status ``queued``), an outbox row the delivery task
works from, and a ``queued`` step in its journey, written in the caller's transaction. Once that
commits, the caller schedules ``server.tasks.deliver`` with the outbox id: delivery never sees
a row that might still roll back. A reply to a message is unique on it (``reply_to_id``), so a
turn redone after a crash cannot answer twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from server.schema import Message, Outbox
from server.services import journey


def write(s: Session, *, instance_id: int, conversation_id: int, text: str, author: str,
          reply_to_id: int | None = None, **fields: Any) -> tuple[Message, Outbox]:
    """Write one reply and its outbox row; ``fields`` are more Message columns (grounding,
    model, token counts). Returns both, flushed (ids set)."""
    reply = Message(instance_id=instance_id, conversation_id=conversation_id, direction="out",
                    author=author, text=text, status="queued", reply_to_id=reply_to_id,
                    **fields)
    s.add(reply)
    s.flush()
    box = Outbox(message_id=reply.id)
    s.add(box)
    s.flush()
    return reply, box


def queued(s: Session, reply: Message, **detail: object) -> None:
    """The reply's first journey step: it waits in the outbox for delivery."""
    journey.record(s, reply.id, "queued", **detail)
