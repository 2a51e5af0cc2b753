"""Scheduled messages: a text an agent or an integration leaves to go out later, once or on a
repeat (a cron expression in the company's time zone).

``ScheduledSend`` is unique on (schedule, occurrence): the key, not memory, decides that an
occurrence goes out once, whichever worker or restart reaches it; it names the message sent.
A schedule is never deleted: cancelled, done or missed, it stays with what it sent.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.schema.base import Base, utcnow


class ScheduledMessage(Base):
    __tablename__ = "scheduled_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    next_at: Mapped[datetime] = mapped_column()  # the occurrence due next (UTC)
    repeat: Mapped[str | None] = mapped_column(String(100))  # cron; none: once
    timezone: Mapped[str] = mapped_column(String(64))  # the repeat's clock
    status: Mapped[str] = mapped_column(String(16))  # scheduled | done | cancelled | missed
    sent: Mapped[int] = mapped_column(Integer, default=0)
    missed: Mapped[int] = mapped_column(Integer, default=0)  # occurrences found too late
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # none: an API token
    author: Mapped[str] = mapped_column(String(120))  # the name shown, kept as it was written
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ScheduledSend(Base):
    __tablename__ = "scheduled_sends"
    schedule_id: Mapped[int] = mapped_column(ForeignKey("scheduled_messages.id"),
                                             primary_key=True)
    due_at: Mapped[datetime] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)


# The minute's look for what is due: scheduled rows by time.
Index("ix_scheduled_messages_due", ScheduledMessage.status, ScheduledMessage.next_at)
