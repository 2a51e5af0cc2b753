"""Flows as data, and the sessions that run them.

A stored flow is the dict form of a ``flows.Flow`` (``flows.to_dict``), validated before it
is kept. A session is one contact's stretch of service on one instance: it opens on the first
message, holds the flow's state and variables, and closes by the flow, by an agent or when
idle. At most one is open per conversation, which a partial unique index enforces.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from server.schema.base import Base, utcnow


class StoredFlow(Base):
    __tablename__ = "flows"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # the flow's own ``id``
    name: Mapped[str] = mapped_column(String(120))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


_OPEN = text("status = 'open'")


class ChatSession(Base):
    __tablename__ = "chat_sessions"
    __table_args__ = (Index("uq_open_session", "conversation_id", unique=True,
                            postgresql_where=_OPEN, sqlite_where=_OPEN),)
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    flow_key: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # flows.state_to_dict
    # An HTTP request or AI question the flow asked for and no result has been fed back yet:
    # a worker that stopped half-way leaves it here for the next turn to carry out.
    pending: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # A wait node's timer: when it fires, and a token so a stale timer task does nothing.
    timer_at: Mapped[datetime | None] = mapped_column()
    timer_token: Mapped[str | None] = mapped_column(String(32))
    # AI mode's memory in this session: {normalized question: reply message id}, so the same
    # question asked again is answered from the stored reply; deleted when the session closes.
    answers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column()
    closed_by: Mapped[str | None] = mapped_column(String(16))  # flow | agent | idle | handoff
