"""Messaging: conversations, the messages in them, each message's journey, and the delivery
of replies (outbox, statuses that come early)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.schema.base import Base, utcnow


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
    # Where people stand with it: open (a bot or nobody), queued (handed to a team, no agent
    # has answered yet), assigned (an agent has it), closed.
    status: Mapped[str] = mapped_column(String(16), default="open")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    handed_off_at: Mapped[datetime | None] = mapped_column()
    agent_replied_at: Mapped[datetime | None] = mapped_column()  # first agent reply since
    closed_notice_at: Mapped[datetime | None] = mapped_column()  # "we are closed", last told
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Any change to the row (the inbox's live updates look for it); none before 0011.
    updated_at: Mapped[datetime | None] = mapped_column(default=utcnow, onupdate=utcnow)


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
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # the agent who wrote it
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(16), default="text")  # gateway_bridge MESSAGE_TYPES
    # The file: {"mime", "sha256", "size", "filename", "state": waiting|stored|refused|failed,
    # "reason"}; its bytes live content-addressed under DATA_DIR/media (server.services.media).
    media: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    via: Mapped[str | None] = mapped_column(String(16))  # how it reached us if not a webhook
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
    transcript: Mapped[str | None] = mapped_column(Text)  # a voice note's words, as transcribed
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
    slot_at: Mapped[float | None] = mapped_column(Float)  # its reserved send slot (epoch s)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class UnsupportedPayload(Base):
    """A webhook body whose shape the adapter does not know, kept whole for a person to read:
    a new gateway version never loses a message silently."""

    __tablename__ = "unsupported_payloads"
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), index=True)
    reason: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
