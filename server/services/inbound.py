"""Webhook events into the database: each message stored once, each status applied once."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway_bridge import Event, InboundMessage, StatusUpdate
from server.schema import Conversation, Instance, Message
from server.services import contacts, journey, statuses

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What a webhook changed; ``turns`` are the conversations that now need a turn."""

    stored: int = 0
    duplicates: int = 0
    ignored: int = 0
    statuses: int = 0
    turns: list[int] = field(default_factory=list)


def handle(sessions: sessionmaker[Session], instance: Instance, events: list[Event],
           *, stale_after: timedelta) -> Outcome:
    """Apply a webhook's events; safe to call again with the same webhook."""
    out = Outcome()
    for ev in events:
        if isinstance(ev, StatusUpdate):
            out.statuses += statuses.apply(sessions, instance.id, ev)
        elif ev.from_me or ev.is_group:
            out.ignored += 1  # our own echoes and group chats are never answered
        else:
            conv_id, new = store_inbound(sessions, instance, ev, stale_after=stale_after)
            if new is None:
                out.duplicates += 1
            else:
                out.stored += 1
                if new and conv_id not in out.turns:
                    out.turns.append(conv_id)
    return out


def store_inbound(sessions: sessionmaker[Session], instance: Instance, ev: InboundMessage,
                  *, stale_after: timedelta) -> tuple[int, bool | None]:
    """Store a customer message once. Returns (conversation, needs a turn); None if a duplicate."""
    contact_id = contacts.resolve(sessions, phone=ev.phone, lid=ev.lid, name=ev.sender_name)
    conv_id = contacts.conversation_for(sessions, contact_id, instance.id, ev.sender)
    stale = ev.timestamp < datetime.now(UTC) - stale_after
    try:
        with sessions.begin() as s:
            msg = Message(instance_id=instance.id, conversation_id=conv_id, direction="in",
                          author="customer", provider_message_id=ev.provider_message_id,
                          text=ev.text, status="stale" if stale else "pending",
                          sent_at=ev.timestamp)
            s.add(msg)
            s.flush()
            journey.record(s, msg.id, "received", provider_id=ev.provider_message_id)
            if stale:
                journey.record(s, msg.id, "stale", reason="arrived late; left for a human")
            conv = s.get(Conversation, conv_id)
            if conv is not None:
                conv.last_inbound_at = ev.timestamp
    except IntegrityError:
        with sessions.begin() as s:
            existing = s.scalar(select(Message.id).where(
                Message.instance_id == instance.id,
                Message.provider_message_id == ev.provider_message_id))
            if existing is not None:
                journey.record(s, existing, "duplicate", detail="webhook delivered again")
        return conv_id, None
    return conv_id, not stale

