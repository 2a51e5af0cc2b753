"""The journey of a message: every step appended, nothing overwritten."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.schema import MessageEvent


def record(session: Session, message_id: int, event: str, **detail: Any) -> None:
    """Append one step to a message's journey."""
    session.add(MessageEvent(message_id=message_id, event=event, detail=detail or None))


def of(session: Session, message_id: int) -> list[MessageEvent]:
    """A message's journey, oldest first."""
    return list(session.scalars(select(MessageEvent).where(MessageEvent.message_id == message_id)
                                .order_by(MessageEvent.id)))
