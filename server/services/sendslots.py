"""The per-number send queue's pace: one send per slot, spaced with jitter, and a daily cap.

WhatsApp bans numbers that send like machines (users report 429s at about 3 messages a second
per number). Each number has a clock, the time of its next free slot; a send reserves the
slot ``max(clock, now)`` and moves the clock on by the number's interval times a random factor
between 0.5 and 1.5, all in one conditional UPDATE, so concurrent workers never share a slot,
and the same UPDATE counts the day's sends and refuses past the cap. A reservation is never
given back: a send that fails and is retried counts again (the cap errs on the safe side).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, or_, update
from sqlalchemy.orm import Session, sessionmaker

from server.schema import Instance
from server.services.connection import today


class CapReached(RuntimeError):
    """The number sent its daily cap; try again ``after`` seconds (at the next day)."""

    def __init__(self, message: str, after: float) -> None:
        super().__init__(message)
        self.after = after


def reserve(sessions: sessionmaker[Session], instance_id: int, now: float) -> float:
    """Reserve the number's next send slot; returns its time (epoch seconds)."""
    day = today()
    with sessions.begin() as s:
        interval = s.get_one(Instance, instance_id).send_interval_s
        gap = interval * random.uniform(0.5, 1.5)
        clock = s.execute(
            update(Instance)
            .where(Instance.id == instance_id,
                   or_(Instance.sent_day.is_(None), Instance.sent_day != day,
                       Instance.sent_today < Instance.daily_cap))
            .values(send_clock=case((Instance.send_clock > now, Instance.send_clock),
                                    else_=now) + gap,
                    sent_today=case((Instance.sent_day == day, Instance.sent_today + 1),
                                    else_=1),
                    sent_day=day)
            .returning(Instance.send_clock)).scalar_one_or_none()
    if clock is None:
        midnight = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                                    microsecond=0)
        raise CapReached("the number reached its daily cap of sends",
                         after=max(1.0, (midnight - datetime.now(UTC)).total_seconds()))
    return float(clock) - gap
