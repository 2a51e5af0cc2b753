"""Sending replies: one outbox row per outbound message, tried until sent or failed for good."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway_bridge import SendError, adapter_for
from server.schema import Conversation, Instance, Message, Outbox
from server.services import journey, policy, sendslots, statuses
from server.services.instances import config, redact

# Waits between tries of one send: 2, 4, 8 ... seconds, at most 5 minutes, so a gateway that is
# down for minutes (a restart, a reconnect) loses nothing, and one that is up is not flooded.
FIRST_WAIT, LONGEST_WAIT = 2.0, 300.0
SLEEP_AT_MOST = 2.0  # a wait for a send slot this short is slept in the worker
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


def deliver(http: httpx.Client, sessions: sessionmaker[Session], outbox_id: int,
            *, max_attempts: int, data_dir: Path | None = None) -> str:
    """Try to send one outbox row; returns its status, raises RetryLater to be tried again.

    Replies to one conversation leave in the order they were written: while an earlier one is
    still pending (retrying), this one raises Waiting without spending an attempt. So does a
    reply whose number is not connected, or whose send slot (server.services.sendslots) is yet
    to come: the outbox holds it, nothing fails for it.
    """
    with sessions.begin() as s:
        box = s.get_one(Outbox, outbox_id)
        if box.status != "pending":
            return box.status
        msg = s.get_one(Message, box.message_id)
        conv = s.get_one(Conversation, msg.conversation_id)
        inst = s.get_one(Instance, msg.instance_id)
        earlier = s.execute(select(Outbox.id, Outbox.attempts)
                            .join(Message, Message.id == Outbox.message_id)
                            .where(Message.conversation_id == conv.id, Outbox.id < outbox_id,
                                   Outbox.status == "pending").limit(1)).first()
        if earlier is not None:
            # About when the earlier reply is tried again, but at least every LOOK_AGAIN: its
            # counter already counts a send in flight, which may well go through.
            after = min(wait_before(earlier.attempts), LOOK_AGAIN) if earlier.attempts > 1 else 1.0
            raise Waiting(f"reply {earlier.id} of the same conversation goes first", after)
        offline = None
        if inst.connection_state in ("disconnected", "pairing"):
            _note(s, box, f"waiting: the number is {inst.connection_state}")
            offline = Waiting(f"number {inst.name} is {inst.connection_state}", LOOK_AGAIN)
        else:
            refusal = policy.refusal(inst.provider, msg, conv)
            if refusal:
                box.status, msg.status, box.last_error = "failed", "failed", refusal
                journey.record(s, msg.id, "failed", reason=refusal)
                return "failed"
        slot, instance_id = box.slot_at, inst.id
    if offline is not None:
        raise offline  # once committed: raised inside, it would roll back the journey's why
    if slot is None:
        try:
            slot = sendslots.reserve(sessions, instance_id, time.time())
        except sendslots.CapReached as exc:
            with sessions.begin() as s:
                _note(s, s.get_one(Outbox, outbox_id), f"waiting: {exc}")
            raise Waiting(str(exc), exc.after) from None
        with sessions.begin() as s:
            s.get_one(Outbox, outbox_id).slot_at = slot
    wait = slot - time.time()
    if wait > SLEEP_AT_MOST:  # woken a little early, to sleep the rest below
        raise Waiting("the number's next send slot is to come", wait - SLEEP_AT_MOST / 2)
    if wait > 0:
        # The queue wakes a task to about the second: a send scheduled for its slot could run
        # late, right beside the next one. A short wait is slept here, so sends keep the pace.
        time.sleep(wait)
    return _send(http, sessions, outbox_id, max_attempts=max_attempts, data_dir=data_dir)


def _send(http: httpx.Client, sessions: sessionmaker[Session], outbox_id: int, *,
          max_attempts: int, data_dir: Path | None) -> str:
    with sessions.begin() as s:
        box = s.get_one(Outbox, outbox_id)
        if box.status != "pending":
            return box.status
        box.attempts += 1
        attempt = box.attempts
        msg = s.get_one(Message, box.message_id)
        conv = s.get_one(Conversation, msg.conversation_id)
        inst = s.get_one(Instance, msg.instance_id)
        cfg, provider, to, msg_id = config(inst), inst.provider, conv.address, msg.id
    try:
        out = policy.outgoing(msg, data_dir)  # OSError: its file is gone from the store
        # The same key on every try: a gateway that takes one sends a reply once even when a
        # crash cut off its answer to the try before.
        provider_id = adapter_for(provider).send(http, cfg, to, out, ref=statuses.ref_for(msg_id))
    except (SendError, OSError) as exc:
        retryable = exc.retryable if isinstance(exc, SendError) else False
        final = not retryable or attempt >= max_attempts
        error = redact(str(exc), cfg)
        with sessions.begin() as s:
            box = s.get_one(Outbox, outbox_id, with_for_update=True)
            if box.status != "pending":  # its echo came meanwhile: the gateway had sent it
                journey.record(s, box.message_id, "send_error", attempt=attempt, error=error,
                               note="its echo had shown it sent: not tried again")
                return box.status
            box.last_error, box.slot_at = error, None
            after = wait_before(attempt, getattr(exc, "retry_after", None))
            journey.record(s, box.message_id, "send_error", attempt=attempt, error=error,
                           **({} if final else {"retry_in_s": after}))
            if final:
                box.status = "failed"
                s.get_one(Message, box.message_id).status = "failed"
                journey.record(s, box.message_id, "failed", reason=error)
        if final:
            return "failed"
        raise RetryLater(error, after) from None
    try:
        with sessions.begin() as s:
            box = s.get_one(Outbox, outbox_id, with_for_update=True)
            if box.status != "pending":  # its echo settled it before this answer came
                return box.status
            box.status = "sent"
            msg = s.get_one(Message, box.message_id)
            msg.provider_message_id = provider_id
            if msg.status == "queued":
                msg.status = "sent"
            journey.record(s, msg.id, "sent", provider_id=provider_id, attempt=attempt)
            instance_id = msg.instance_id
    except IntegrityError:  # its echo was stored first as typed on the phone; it is ours
        with sessions.begin() as s:
            box = s.get_one(Outbox, outbox_id)
            box.status = "sent"
            s.get_one(Message, box.message_id).status = "sent"
            journey.record(s, box.message_id, "sent", provider_id=provider_id, attempt=attempt,
                           note="its echo came first and was stored as a message of its own")
        return "sent"
    statuses.settle(sessions, instance_id, provider_id)  # a status the gateway sent first
    return "sent"


def replay(sessions: sessionmaker[Session], outbox_id: int) -> None:
    """Put a dead letter (a send that failed for good) back in line, tries counted anew; its
    journey keeps the failure. LookupError if there is no such failed send."""
    with sessions.begin() as s:
        box = s.get(Outbox, outbox_id)
        if box is None or box.status != "failed":
            raise LookupError(f"no failed send {outbox_id}")
        box.status, box.attempts, box.slot_at = "pending", 0, None
        msg = s.get_one(Message, box.message_id)
        msg.status = "queued"
        journey.record(s, msg.id, "replayed", after_error=box.last_error)


def _note(s: Session, box: Outbox, why: str) -> None:
    """Say once in the journey why a reply waits (not on every look)."""
    if box.last_error != why:
        box.last_error = why
        journey.record(s, box.message_id, "waiting", reason=why)


def next_in_line(sessions: sessionmaker[Session], outbox_id: int) -> int | None:
    """The conversation's next reply waiting after this one (say a long reply's next part)."""
    with sessions() as s:
        conv_id = s.scalar(select(Message.conversation_id).join(
            Outbox, Outbox.message_id == Message.id).where(Outbox.id == outbox_id))
        return s.scalar(select(Outbox.id).join(Message, Message.id == Outbox.message_id)
                        .where(Message.conversation_id == conv_id, Outbox.id > outbox_id,
                               Outbox.status == "pending").order_by(Outbox.id).limit(1))


def dead_letters(s: Session, instance: str | None = None,
                 limit: int = 100) -> list[dict[str, object]]:
    """Sends that failed for good, newest first, with why: what an admin may replay."""
    q = (select(Outbox, Message, Instance.name).join(Message, Message.id == Outbox.message_id)
         .join(Instance, Instance.id == Message.instance_id).where(Outbox.status == "failed"))
    if instance is not None:
        q = q.where(Instance.name == instance)
    rows = s.execute(q.order_by(Outbox.id.desc()).limit(limit)).tuples()
    return [{"id": box.id, "message_id": msg.id, "conversation_id": msg.conversation_id,
             "instance": name, "type": msg.type, "text": msg.text, "attempts": box.attempts,
             "error": box.last_error, "failed_at": box.updated_at} for box, msg, name in rows]
