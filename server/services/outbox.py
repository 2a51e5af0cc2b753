"""Sending replies: one outbox row per outbound message, tried until sent or failed for good."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway_bridge import InstanceConfig, SendError, adapter_for
from server.schema import Conversation, Instance, Message, Outbox
from server.services import journey, statuses

# Waits between tries of one send: 2, 4, 8 ... seconds, at most 5 minutes, so a gateway that is
# down for minutes (a restart, a reconnect) loses nothing, and one that is up is not flooded.
FIRST_WAIT, LONGEST_WAIT = 2.0, 300.0
LOOK_AGAIN = 10.0  # the longest a reply waiting behind a retrying one goes without looking


class RetryLater(RuntimeError):
    """The send failed in a way that may pass; try again ``after`` seconds."""

    def __init__(self, message: str, after: float) -> None:
        super().__init__(message)
        self.after = after


def wait_before(attempt: int, asked: float | None = None) -> float:
    """Seconds before the try after ``attempt``: what the gateway asked, or doubling waits."""
    if asked is not None:
        return min(asked, LONGEST_WAIT)
    return min(FIRST_WAIT * 2 ** (attempt - 1), LONGEST_WAIT)


class Waiting(RuntimeError):
    """An earlier reply to the same conversation is not sent yet; this one waits its turn,
    looking again ``after`` seconds, about when the earlier one is tried again."""

    def __init__(self, message: str, after: float) -> None:
        super().__init__(message)
        self.after = after


def instance_config(inst: Instance) -> InstanceConfig:
    return InstanceConfig(name=inst.name, webhook_secret=inst.webhook_secret,
                          api_url=inst.api_url, api_key=inst.api_key)


def deliver(http: httpx.Client, sessions: sessionmaker[Session], outbox_id: int,
            *, max_attempts: int) -> str:
    """Try to send one outbox row; returns its status, raises RetryLater to be tried again.

    Replies to one conversation leave in the order they were written: while an earlier one is
    still pending (retrying), this one raises Waiting without spending an attempt.
    """
    with sessions.begin() as s:
        box = s.get_one(Outbox, outbox_id)
        if box.status != "pending":
            return box.status
        conv_id = s.get_one(Message, box.message_id).conversation_id
        earlier = s.execute(select(Outbox.id, Outbox.attempts)
                            .join(Message, Message.id == Outbox.message_id)
                            .where(Message.conversation_id == conv_id, Outbox.id < outbox_id,
                                   Outbox.status == "pending").limit(1)).first()
        if earlier is not None:
            # About when the earlier reply is tried again, but at least every LOOK_AGAIN: its
            # counter already counts a send in flight, which may well go through.
            after = min(wait_before(earlier.attempts), LOOK_AGAIN) if earlier.attempts > 1 else 1.0
            raise Waiting(f"reply {earlier.id} of the same conversation goes first", after)
        box.attempts += 1
        attempt = box.attempts
        msg = s.get_one(Message, box.message_id)
        conv = s.get_one(Conversation, msg.conversation_id)
        inst = s.get_one(Instance, msg.instance_id)
        cfg, provider, to, text = instance_config(inst), inst.provider, conv.address, msg.text
        msg_id = msg.id
    try:
        # The same key on every try: a gateway that takes one sends a reply once even when a
        # crash cut off its answer to the try before.
        provider_id = adapter_for(provider).send_text(http, cfg, to, text, ref=f"out-{msg_id}")
    except SendError as exc:
        final = not exc.retryable or attempt >= max_attempts
        with sessions.begin() as s:
            box = s.get_one(Outbox, outbox_id)
            box.last_error = str(exc)
            after = wait_before(attempt, exc.retry_after)
            journey.record(s, box.message_id, "send_error", attempt=attempt, error=str(exc),
                           **({} if final else {"retry_in_s": after}))
            if final:
                box.status = "failed"
                s.get_one(Message, box.message_id).status = "failed"
                journey.record(s, box.message_id, "failed", reason=str(exc))
        if final:
            return "failed"
        raise RetryLater(str(exc), after) from None
    with sessions.begin() as s:
        box = s.get_one(Outbox, outbox_id)
        box.status = "sent"
        msg = s.get_one(Message, box.message_id)
        msg.provider_message_id = provider_id
        if msg.status == "queued":
            msg.status = "sent"
        journey.record(s, msg.id, "sent", provider_id=provider_id, attempt=attempt)
        instance_id = msg.instance_id
    statuses.settle(sessions, instance_id, provider_id)  # a status the gateway sent first
    return "sent"
