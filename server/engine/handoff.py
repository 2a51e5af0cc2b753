"""Leaving a turn to the humans: its messages go unanswered to an agent's queue."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from server.schema import Conversation, Message
from server.services import journey


def leave_to_humans(sessions: sessionmaker[Session], pending: list[Message], event: str, *,
                    conversation_too: bool = False, **detail: object) -> None:
    """The turn's messages go unanswered to the humans (and, ``conversation_too``, the
    conversation from now on), with ``event`` and its detail in their journey."""
    with sessions.begin() as s:
        for m in pending:
            s.get_one(Message, m.id).status = "handed_off"
            journey.record(s, m.id, event, **detail)
        if conversation_too:
            s.get_one(Conversation, pending[0].conversation_id).mode = "human"
