"""Instances: the connected WhatsApp numbers, their gateway credentials and how the assistant
works on each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.schema.base import Base, utcnow
from server.secretbox import Sealed


class Instance(Base):
    """One connected WhatsApp number, reached through one gateway."""

    __tablename__ = "instances"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(32))
    # Sealed at rest (server.secretbox): a database dump holds no usable credential.
    webhook_secret: Mapped[str] = mapped_column(Sealed(512))
    api_url: Mapped[str | None] = mapped_column(String(512))
    api_key: Mapped[str | None] = mapped_column(Sealed(512))
    ai_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    kb_collection: Mapped[str | None] = mapped_column(String(64))
    # How the assistant works on this number; empty means the global settings.
    model: Mapped[str | None] = mapped_column(String(64))
    fallback_models: Mapped[list[Any] | None] = mapped_column(JSON)
    max_tokens: Mapped[int | None] = mapped_column(Integer)
    temperature: Mapped[float | None] = mapped_column(Float)
    persona: Mapped[str | None] = mapped_column(Text)
    budget_daily_usd: Mapped[float | None] = mapped_column(Float)
    budget_monthly_usd: Mapped[float | None] = mapped_column(Float)
    # The gateway's own settings that are no secret: Evolution's instance name, WAHA's session,
    # Cloud's phone_number_id and API version (gateway_bridge.InstanceConfig.options).
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    verify_token: Mapped[str | None] = mapped_column(Sealed(512))  # Cloud's GET handshake
    # The per-number send queue (server.services.sendslots): at most one send every
    # ``send_interval_s`` with jitter, ``daily_cap`` a day; ``send_clock`` is the next free
    # slot (epoch seconds), ``sent_day``/``sent_today`` the day's count, moved in one UPDATE.
    send_interval_s: Mapped[float] = mapped_column(Float, default=1.0)
    daily_cap: Mapped[int] = mapped_column(Integer, default=1000)
    send_clock: Mapped[float] = mapped_column(Float, default=0.0)
    sent_day: Mapped[str | None] = mapped_column(String(10))
    sent_today: Mapped[int] = mapped_column(Integer, default=0)
    # Connection truth (server.services.connection): from events and from asking the gateway.
    connection_state: Mapped[str] = mapped_column(String(16), default="unknown")
    connection_detail: Mapped[str | None] = mapped_column(String(200))
    connection_since: Mapped[datetime | None] = mapped_column()
    connection_checked_at: Mapped[datetime | None] = mapped_column()
    qr: Mapped[str | None] = mapped_column(Text)
    default_flow: Mapped[str | None] = mapped_column(String(64))  # a flow's key; none: AI mode
    deleted_at: Mapped[datetime | None] = mapped_column()  # removed; its history stays
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
