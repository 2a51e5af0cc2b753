"""The built-in WhatsApp simulator's own table: what its phones show."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.schema.base import Base, utcnow


class SimulatorMessage(Base):
    """What the built-in WhatsApp simulator's phones show; stands in for the WhatsApp network."""

    __tablename__ = "simulator_messages"
    __table_args__ = (Index("ix_sim_instance_phone", "instance", "phone"),
                      UniqueConstraint("instance", "ref", name="uq_sim_instance_ref"))
    id: Mapped[int] = mapped_column(primary_key=True)
    instance: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(3))  # in = to the company, out = to the phone
    provider_message_id: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    # The sender's idempotency key: a send tried again after a crash shows once on the phone.
    ref: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
