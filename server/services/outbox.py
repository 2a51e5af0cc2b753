"""Sending replies: one outbox row per outbound message, tried until sent or failed for good."""

from __future__ import annotations

import httpx
from sqlalchemy.orm import Session, sessionmaker

from gateway_bridge import InstanceConfig, SendError, adapter_for
from server.schema import Conversation, Instance, Message, Outbox
from server.services import journey


class RetryLater(RuntimeError):
    """The send failed in a way that may pass; the task queue tries again."""


def instance_config(inst: Instance) -> InstanceConfig:
    return InstanceConfig(name=inst.name, webhook_secret=inst.webhook_secret,
                          api_url=inst.api_url, api_key=inst.api_key)


def deliver(http: httpx.Client, sessions: sessionmaker[Session], outbox_id: int,
            *, max_attempts: int) -> str:
    """Try to send one outbox row; returns its status, raises RetryLater to be tried again."""
    with sessions.begin() as s:
        box = s.get_one(Outbox, outbox_id)
        if box.status != "pending":
            return box.status
        box.attempts += 1
        attempt = box.attempts
        msg = s.get_one(Message, box.message_id)
        conv = s.get_one(Conversation, msg.conversation_id)
        inst = s.get_one(Instance, msg.instance_id)
        cfg, provider, to, text = instance_config(inst), inst.provider, conv.address, msg.text
    try:
        provider_id = adapter_for(provider).send_text(http, cfg, to, text)
    except SendError as exc:
        final = not exc.retryable or attempt >= max_attempts
        with sessions.begin() as s:
            box = s.get_one(Outbox, outbox_id)
            box.last_error = str(exc)
            journey.record(s, box.message_id, "send_error", attempt=attempt, error=str(exc))
            if final:
                box.status = "failed"
                s.get_one(Message, box.message_id).status = "failed"
                journey.record(s, box.message_id, "failed", reason=str(exc))
        if final:
            return "failed"
        raise RetryLater(str(exc)) from None
    with sessions.begin() as s:
        box = s.get_one(Outbox, outbox_id)
        box.status = "sent"
        msg = s.get_one(Message, box.message_id)
        msg.provider_message_id = provider_id
        if msg.status == "queued":
            msg.status = "sent"
        journey.record(s, msg.id, "sent", provider_id=provider_id, attempt=attempt)
    return "sent"
