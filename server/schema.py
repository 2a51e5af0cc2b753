"""The database schema, all tables in one place.

Duplicates are decided by unique keys inside transactions, never by memory: a message is unique
on (instance, provider message id), a reply on the message it answers, an identity on its value.
Nothing is deleted to recover from an error; every message keeps a journey of what happened.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from server.secretbox import Sealed


def utcnow() -> datetime:
    """Timezone-aware now, the only clock the schema uses."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


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


class Contact(Base):
    """A customer; may be known under several identities (phone, JID, @lid)."""

    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContactIdentity(Base):
    """One address under which a contact writes; unique, so a customer is never split."""

    __tablename__ = "contact_identities"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_identity_kind_value"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # phone | lid
    value: Mapped[str] = mapped_column(String(128))


class Conversation(Base):
    """The session of one contact on one instance: who answers it now."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("contact_id", "instance_id", name="uq_conversation"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"))
    address: Mapped[str] = mapped_column(String(128))  # where replies go, as the gateway wants it
    mode: Mapped[str] = mapped_column(String(16), default="ai")  # ai | flow | human
    last_inbound_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Message(Base):
    """A message in either direction, stored once."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("instance_id", "provider_message_id", name="uq_message_provider_id"),
        UniqueConstraint("reply_to_id", name="uq_message_reply_to"),
        Index("ix_messages_conversation_status", "conversation_id", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    author: Mapped[str] = mapped_column(String(16))  # customer | assistant | agent | flow | system
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text, default="")
    # in: pending | processing | answered | handed_off | stale | ignored
    # out: queued | sent | delivered | read | failed
    status: Mapped[str] = mapped_column(String(16))
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    grounding: Mapped[list[Any] | None] = mapped_column(JSON)  # passage ids the reply used
    model: Mapped[str | None] = mapped_column(String(128))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[float | None] = mapped_column(Float)
    sent_at: Mapped[datetime | None] = mapped_column()  # the gateway's timestamp
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageEvent(Base):
    """One step of a message's journey: received, duplicate, turn, queued, sent, delivered..."""

    __tablename__ = "message_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class EarlyStatus(Base):
    """A delivery status that came before its send was recorded (gateways are that fast); kept
    on a unique key and applied when the outbox records the provider's message id."""

    __tablename__ = "early_statuses"
    __table_args__ = (UniqueConstraint("instance_id", "provider_message_id", "status",
                                       name="uq_early_status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"))
    provider_message_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_to: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))


class Outbox(Base):
    """Delivery work for one outbound message; survives restarts until sent or failed."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Lease(Base):
    """A worker's hold on one piece of work (``conversation-N``, ``outbox-N``) until
    ``expires_at``: renewed while the worker lives, taken over once it lapses
    (server.services.leases)."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column()


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


class LlmUsage(Base):
    """One model call: tokens and cost, what the budgets and reports add up."""

    __tablename__ = "llm_usage"
    __table_args__ = (Index("ix_llm_usage_at", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    purpose: Mapped[str] = mapped_column(String(16))  # reply | api
    model: Mapped[str] = mapped_column(String(64))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)


class BudgetAlert(Base):
    """A budget crossed its alert share or its limit; recorded once per scope and period."""

    __tablename__ = "budget_alerts"
    __table_args__ = (UniqueConstraint("scope", "period", "period_start", "level",
                                       name="uq_budget_alert"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(32))  # total | instance:<id>
    period: Mapped[str] = mapped_column(String(8))  # day | month
    period_start: Mapped[str] = mapped_column(String(10))
    level: Mapped[str] = mapped_column(String(8))  # alert | exceeded
    spent: Mapped[float] = mapped_column(Float)
    limit: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A token for the OpenAI-compatible endpoint; only its hash is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    collection: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()


class ModelVersion(Base):
    """A version of the local model: the base GGUF, optionally with a LoRA adapter (GGUF).

    Versions are never deleted; the one serving is the last promotion's (``ModelPromotion``).
    """

    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    base: Mapped[str] = mapped_column(Text)  # base GGUF file
    adapter: Mapped[str | None] = mapped_column(Text)  # LoRA adapter GGUF file
    refusal_threshold: Mapped[float | None] = mapped_column(Float)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data_sha256: Mapped[str | None] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    gate: Mapped[dict[str, Any] | None] = mapped_column()  # last comparison with the serving one
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelPromotion(Base):
    """Which version serves from when: promotions and rollbacks, in order, never rewritten."""

    __tablename__ = "model_promotions"
    id: Mapped[int] = mapped_column(primary_key=True)
    # None: the plain base model (no adapter), as before the first promotion.
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    action: Mapped[str] = mapped_column(String(16))  # promote | rollback | default
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)
