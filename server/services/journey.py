"""The journey of a message: every step appended, nothing overwritten."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from server.schema import MessageEvent, utcnow

_INSERT = insert(MessageEvent)


def record(session: Session, message_id: int, event: str, **detail: Any) -> None:
    """Append one step to a message's journey."""
    session.add(MessageEvent(message_id=message_id, event=event, detail=detail or None))


def append(c: Connection, message_id: int, steps: list[tuple[str, dict[str, Any]]]) -> None:
    """Append steps (event, detail) to a message's journey in one Core INSERT on the caller's
    connection: the webhook path's way, without an ORM session (``record`` is the same row)."""
    insert_rows(c, rows(message_id, steps))


def rows(message_id: int, steps: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Journey rows of one message, to write with others' in one statement (``insert_rows``)."""
    at = utcnow()
    return [{"message_id": message_id, "event": event, "detail": detail or None, "at": at}
            for event, detail in steps]


def insert_rows(c: Connection, rows_: list[dict[str, Any]]) -> None:
    if rows_:
        c.execute(_INSERT, rows_)


def of(session: Session, message_id: int) -> list[MessageEvent]:
    """A message's journey, oldest first."""
    return list(session.scalars(select(MessageEvent).where(MessageEvent.message_id == message_id)
                                .order_by(MessageEvent.id)))
