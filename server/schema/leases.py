"""Leases: which worker holds which piece of work (a conversation's turn, an outbox row), so
that several workers never do the same work and a dead one's work is taken over."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from server.schema.base import Base


class Lease(Base):
    """A worker's hold on one piece of work (``conversation-N``, ``outbox-N``) until
    ``expires_at``: renewed while the worker lives, taken over once it lapses
    (server.services.leases)."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column()
