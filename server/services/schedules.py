"""Scheduled messages: a text an agent or an integration leaves to go out later in one
conversation, once or on a repeat (a cron expression read in the company's time zone).

Sending is exactly once per occurrence by a unique key, not by memory: the message, its outbox
row and the (schedule, occurrence) row are written in one transaction, so a second worker, a
retried task or a restart finds the occurrence taken and sends nothing. The due look runs
every minute and queues each send at its second; a send found more than ``GRACE`` late (the
server was down) is not sent hours late as if on time: it is counted ``missed``, for the
person who scheduled it to see, and a repeat goes on from its next occurrence.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from croniter import CroniterBadDateError, croniter
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.engine import replies
from server.schema import Conversation, Instance, ScheduledMessage, ScheduledSend
from server.services import access
from server.services.access import Principal
from server.services.contact_data import Invalid

log = logging.getLogger(__name__)
GRACE = timedelta(minutes=30)  # later than this, an occurrence is missed, not sent late
MIN_GAP = timedelta(hours=1)  # a repeat more often is spam to a customer (and bans numbers)
MAX_AHEAD = timedelta(days=366)
SKEW = timedelta(minutes=1)  # a time this far in the past is "now" (a clock, a slow form)
SOON = timedelta(minutes=1)  # due this soon: queued at once, the minute's look may be past
ZONE = "America/Sao_Paulo"
STATUSES = ("scheduled", "done", "cancelled", "missed")
# croniter's random (R) and hashed (H) fields: a new value each time the expression is read,
# so a repeat checked as hourly would go out at a different minute each time (minutes apart)
_RANDOM = re.compile(r"\b[RH]\b", re.IGNORECASE)


class Refused(ValueError):
    """Refused by the schedule's state: cancelling one that already went out."""


@dataclass(frozen=True)
class Plan:
    """A checked schedule: what to send, its first occurrence (UTC), its repeat and clock."""

    text: str
    first: datetime
    repeat: str | None
    timezone: str


def plan(text: str, send_at: datetime | None, repeat: str | None, timezone: str,
         now: datetime) -> Plan:
    """Check what a person asked for; ``Invalid`` names the field at fault. A ``send_at``
    without an offset is read on ``timezone``'s clock; with a repeat and no ``send_at``, the
    first occurrence is the repeat's next."""
    clean = text.strip()
    if not clean:
        raise Invalid("write the message first", "text")
    if len(clean) > replies.MAX_TEXT:
        raise Invalid(f"a message has at most {replies.MAX_TEXT} characters ({len(clean)} "
                      "given)", "text")
    if "\x00" in clean:  # PostgreSQL stores no NUL in text, and WhatsApp shows none
        raise Invalid("a message cannot have a NUL character", "text")
    zone = _zone(timezone)
    cron = _repeat(repeat, zone, now) if repeat and repeat.strip() else None
    if send_at is None and cron is None:
        raise Invalid("say when: a date and time, or a repeat", "send_at")
    if send_at is not None:
        try:
            first = (send_at if send_at.tzinfo else send_at.replace(tzinfo=zone)).astimezone(UTC)
        except OverflowError:  # year 1 or 9999 moved to UTC leaves the calendar
            raise Invalid("at most a year ahead", "send_at") from None
    else:
        first = _after(cron or "", zone, now)
    if first < now - SKEW:
        raise Invalid("that time has passed", "send_at")
    if first > now + MAX_AHEAD:
        raise Invalid("at most a year ahead", "send_at")
    if cron is not None and send_at is not None and _after(cron, zone, first) - first < MIN_GAP:
        raise Invalid("the repeat's next time comes within an hour of the first", "send_at")
    return Plan(clean, max(first, now), cron, timezone)


@functools.cache
def _zones() -> frozenset[str]:
    """The IANA zones this machine knows, less the aliases of no place: "localtime" is the
    server's own (and on another machine, nothing), "Factory" and "posixrules" are no clock."""
    return frozenset(available_timezones()) - {"localtime", "Factory", "posixrules"}


def _zone(name: str) -> ZoneInfo:
    if name not in _zones():
        raise Invalid(f"unknown time zone {name[:64]!r} (such as {ZONE})", "timezone")
    return ZoneInfo(name)


def _repeat(expr: str, zone: ZoneInfo, now: datetime) -> str:
    """A five-field cron expression that repeats at most once an hour."""
    expr = " ".join(expr.split())
    if (len(expr) > 100 or len(expr.split()) != 5 or _RANDOM.search(expr)
            or not croniter.is_valid(expr)):
        raise Invalid("a repeat is five cron fields: minute hour day month weekday "
                      "(\"0 9 * * 1\": Mondays at 9:00)", "repeat")
    try:
        ahead = [_after(expr, zone, now)]
    except CroniterBadDateError:  # "0 9 31 2 *": February has no 31st
        raise Invalid("this repeat never comes (no such day)", "repeat") from None
    if ahead[0] > now + MAX_AHEAD:  # "0 9 29 2 *": once in four years
        raise Invalid("a repeat comes at least once a year", "repeat")
    for _ in range(24):  # the occurrences as they will be sent, apart in real time (UTC)
        ahead.append(_after(expr, zone, ahead[-1]))
    if any(b - a < MIN_GAP for a, b in zip(ahead, ahead[1:], strict=False)):
        raise Invalid("a repeat goes out at most once an hour", "repeat")
    return expr


def _after(expr: str, zone: ZoneInfo, moment: datetime) -> datetime:
    """The repeat's first occurrence after ``moment``, in UTC. A time the clock shows twice
    (the hour repeated when daylight saving ends) goes out once, at its first showing."""
    times = croniter(expr, moment.astimezone(zone))
    nxt: datetime = times.get_next(datetime)
    while nxt.fold and nxt.replace(fold=0).utcoffset() != nxt.utcoffset():
        nxt = times.get_next(datetime)
    return nxt.astimezone(UTC)


def create(s: Session, who: Principal, conversation_id: int, p: Plan) -> ScheduledMessage:
    """Store a schedule for a conversation the caller may see (the route checked it)."""
    if s.get(Conversation, conversation_id) is None:
        raise LookupError(f"conversation {conversation_id} not found")
    row = ScheduledMessage(conversation_id=conversation_id, text=p.text, next_at=p.first,
                           repeat=p.repeat, timezone=p.timezone, status="scheduled",
                           sent=0, missed=0, user_id=who.user_id,
                           author=(who.name or (f"token {who.token}" if who.token else ""))[:120])
    s.add(row)
    s.flush()
    return row


def _visible(who: Principal) -> ColumnElement[bool]:
    return ScheduledMessage.conversation_id.in_(select(Conversation.id)
                                                .where(access.visible(who)))


def listing(s: Session, who: Principal, *, status: str | None = None,
            conversation_id: int | None = None, limit: int = 100) -> list[ScheduledMessage]:
    """The schedules of the conversations the caller sees, the next due first."""
    q = select(ScheduledMessage).where(_visible(who))
    if status:
        q = q.where(ScheduledMessage.status == status)
    if conversation_id is not None:
        q = q.where(ScheduledMessage.conversation_id == conversation_id)
    return list(s.scalars(q.order_by(ScheduledMessage.next_at, ScheduledMessage.id)
                          .limit(limit)))


def cancel(s: Session, who: Principal, schedule_id: int) -> ScheduledMessage:
    """Stop a schedule; what it sent stays. ``LookupError`` where the caller sees none.

    One conditional write, not a read then a write: on SQLite a read takes no lock, so a send
    committing between the two would go out while its schedule read "cancelled"."""
    mine = (ScheduledMessage.id == schedule_id, _visible(who))
    done = s.execute(update(ScheduledMessage)
                     .where(*mine, ScheduledMessage.status == "scheduled")
                     .values(status="cancelled")
                     .execution_options(synchronize_session=False))
    row = s.scalar(select(ScheduledMessage).where(*mine)
                   .execution_options(populate_existing=True))
    if row is None:
        raise LookupError(f"scheduled message {schedule_id} not found")
    if not done.rowcount:  # type: ignore[attr-defined]
        raise Refused(f"this scheduled message is {row.status} already")
    return row


def describe(row: ScheduledMessage) -> dict[str, Any]:
    return {"id": row.id, "conversation_id": row.conversation_id, "text": row.text,
            "next_at": row.next_at if row.status == "scheduled" else None,
            "repeat": row.repeat, "timezone": row.timezone, "status": row.status,
            "sent": row.sent, "missed": row.missed, "author": row.author,
            "created_at": row.created_at}


def due(sessions: sessionmaker[Session], until: datetime) -> list[tuple[int, datetime]]:
    """The schedules due by ``until``: (id, when), the earliest first."""
    with sessions() as s:
        return [(r.id, r.next_at) for r in s.execute(
            select(ScheduledMessage.id, ScheduledMessage.next_at)
            .where(ScheduledMessage.status == "scheduled", ScheduledMessage.next_at <= until)
            .order_by(ScheduledMessage.next_at).limit(1000))]


def send(sessions: sessionmaker[Session], schedule_id: int, now: datetime) -> int | None:
    """Send the schedule's due occurrence; the outbox id, or None when nothing went out (not
    due yet, cancelled, sent by another worker, or missed)."""
    try:
        with sessions.begin() as s:
            # A write first takes the row (SQLite's lock too, where a read takes none), so a
            # cancel waits for this send, or this send reads the cancel.
            s.execute(update(ScheduledMessage).where(ScheduledMessage.id == schedule_id)
                      .values(status=ScheduledMessage.status,
                              updated_at=ScheduledMessage.updated_at)
                      .execution_options(synchronize_session=False))
            row = s.scalar(select(ScheduledMessage).where(ScheduledMessage.id == schedule_id)
                           .execution_options(populate_existing=True))
            if row is None or row.status != "scheduled" or row.next_at > now:
                return None
            occurrence = row.next_at
            if now - occurrence > GRACE:
                _skip(row, now)
                log.warning("scheduled message %s: due %s, found at %s: missed", row.id,
                            occurrence.isoformat(), now.isoformat())
                return None
            conv = s.get_one(Conversation, row.conversation_id)
            if s.get_one(Instance, conv.instance_id).deleted_at is not None:
                row.status = "cancelled"  # the number was removed: nothing goes out on it
                log.warning("scheduled message %s: its number was removed; cancelled", row.id)
                return None
            reply, box = replies.write(s, instance_id=conv.instance_id,
                                       conversation_id=conv.id, text=row.text,
                                       author="system", user_id=row.user_id)
            s.add(ScheduledSend(schedule_id=row.id, due_at=occurrence, message_id=reply.id))
            s.flush()  # the key decides here: a second sender of this occurrence stops
            replies.queued(s, reply, by="schedule", schedule_id=row.id,
                           due_at=occurrence.isoformat())
            row.sent += 1
            _advance(row, now)
            return box.id
    except IntegrityError:  # another worker sent this occurrence first: its transaction won
        return None


def _advance(row: ScheduledMessage, now: datetime) -> None:
    """The next occurrence after ``now``, or done for a single message."""
    if row.repeat is None:
        row.status = "done"
    else:
        row.next_at = _after(row.repeat, ZoneInfo(row.timezone), max(now, row.next_at))


def _skip(row: ScheduledMessage, now: datetime) -> None:
    """Count the occurrences that passed more than ``GRACE`` ago and go on from the next one
    (sent at the next look if it is due within the grace)."""
    if row.repeat is None:
        row.missed, row.status = row.missed + 1, "missed"
        return
    zone, missed, at = ZoneInfo(row.timezone), 0, row.next_at
    while now - at > GRACE and missed < 10_000:
        missed += 1
        at = _after(row.repeat, zone, at)
    row.missed += missed
    row.next_at = at
