"""Work that a stopped worker left behind, found again from the database.

The queue can lose a task: a worker killed while running it had already taken it off the
queue. The database still says what is unfinished (messages pending or cut off mid-turn,
replies not sent), so each process requeues that at start and a periodic sweep requeues what
has waited too long. Requeuing is always safe: a turn or send that a live worker holds is
skipped by its lease (server.services.leases), and a turn with nothing pending does nothing.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from server.schema import Message, Outbox, utcnow
from server.services import leases
from server.services.outbox import LONGEST_WAIT

UNFINISHED = ("pending", "processing")


def unfinished(sessions: sessionmaker[Session]) -> tuple[list[int], list[int]]:
    """Conversations with messages waiting for (or cut off in) a turn, and unsent replies."""
    with sessions() as s:
        convs = sorted(set(s.scalars(select(Message.conversation_id).where(
            Message.direction == "in", Message.status.in_(UNFINISHED)))))
        boxes = list(s.scalars(select(Outbox.id).where(Outbox.status == "pending")
                               .order_by(Outbox.id)))
    return convs, boxes


def overdue(sessions: sessionmaker[Session], *, after: timedelta) -> tuple[list[int], list[int]]:
    """Unfinished work nobody holds whose task was lost with a worker: a turn cut off (its
    messages are ``processing`` only under a live lease, so without one its worker died), and
    messages or replies waiting ``after`` longer than they should. A reply in backoff waits at
    most LONGEST_WAIT between tries, so only one untouched for longer than that counts."""
    now = utcnow()
    with sessions() as s:
        convs = sorted(set(s.scalars(select(Message.conversation_id).where(
            Message.direction == "in",
            or_(Message.status == "processing",
                (Message.status == "pending") & (Message.created_at < now - after))))))
        boxes = list(s.scalars(select(Outbox.id).where(
            Outbox.status == "pending",
            or_(Outbox.attempts == 0, Outbox.updated_at < now - after
                - timedelta(seconds=LONGEST_WAIT)),
            Outbox.created_at < now - after).order_by(Outbox.id)))
        held = leases.live(s, [f"conversation-{c}" for c in convs] +
                           [f"outbox-{b}" for b in boxes])
    return ([c for c in convs if f"conversation-{c}" not in held],
            [b for b in boxes if f"outbox-{b}" not in held])


def unfetched(sessions: sessionmaker[Session], *, older_than: timedelta) -> list[int]:
    """Inbound messages whose file still waits to be downloaded ``older_than`` after they came:
    its task was lost with a worker (downloading again is safe: the file is kept by its hash and
    a message's file is fetched only while it waits)."""
    cutoff = utcnow() - older_than
    with sessions() as s:
        return list(s.scalars(select(Message.id).where(
            Message.direction == "in", Message.media.is_not(None),
            Message.media["state"].as_string() == "waiting",
            Message.created_at < cutoff).order_by(Message.id)))
