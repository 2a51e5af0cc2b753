"""What changed for one viewer of the inbox, found by looking at the database once a second:
no message broker, so it works the same with one process or many behind a balancer.

Every message, and every step of its delivery (queued, sent, delivered, read, failed), appends
a journey step (``message_events``); every change to a conversation (a new customer message,
a handoff, an assignment, a close, a note) stamps ``conversations.updated_at``. A look reads
both for the last ``WINDOW`` and keeps, per conversation, the newest step id and stamp it has
seen: a conversation whose pair moved is news. Looking back a window, instead of after a cursor,
is what makes it exact across processes: a transaction that took an id or a time early and
committed late (the normal case under load) is still seen on the next look, once.
Only conversations the viewer may see are told (``server.services.access.visible``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.schema import Conversation, Message, MessageEvent, utcnow
from server.services.access import Principal, visible

WINDOW = timedelta(seconds=30)
Mark = tuple[int, datetime | None]  # (newest journey step id, updated_at)


@dataclass
class Watch:
    """One viewer's look-out: changes after ``since`` (when their page was drawn) are news."""

    who: Principal
    since: datetime
    seen: dict[int, Mark] = field(default_factory=dict)

    def look(self, s: Session, now: datetime | None = None) -> set[int]:
        """The conversations the viewer may see that changed since the last look."""
        start = (now or utcnow()) - WINDOW
        marks: dict[int, Mark] = {}
        latest: dict[int, datetime] = {}
        for conv, step, at in s.execute(
                select(Message.conversation_id, func.max(MessageEvent.id),
                       func.max(MessageEvent.at))
                .join(Message, Message.id == MessageEvent.message_id)
                .where(MessageEvent.at >= start).group_by(Message.conversation_id)).tuples():
            marks[conv] = (step, None)
            latest[conv] = at
        for conv, stamp in s.execute(select(Conversation.id, Conversation.updated_at).where(
                Conversation.updated_at >= start)).tuples():
            marks[conv] = (marks.get(conv, (0, None))[0], stamp)
            latest[conv] = max(x for x in (latest.get(conv), stamp) if x is not None)
        changed = {conv for conv, mark in marks.items()
                   if (self.seen[conv] != mark if conv in self.seen
                       else latest[conv] > self.since)}
        self.seen = marks
        if not changed or self.who.at_least("admin"):
            return changed
        return set(s.scalars(select(Conversation.id).where(
            Conversation.id.in_(sorted(changed)), visible(self.who))))
