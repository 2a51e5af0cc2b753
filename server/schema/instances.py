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
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
