"""One turn of a conversation: take the contact's pending messages in order, answer them once."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from models.base import ChatMessage
from server.runtime import Runtime
from server.schema import Conversation, Instance, LlmUsage, Message, Outbox, utcnow
from server.services import assistant, budget, journey

log = logging.getLogger(__name__)
HISTORY_MESSAGES = 12


def claim(sessions: sessionmaker[Session], conversation_id: int) -> list[Message]:
    """Mark the conversation's pending messages as processing; a burst becomes one turn."""
    with sessions.begin() as s:
        pending = list(s.scalars(select(Message).where(
            Message.conversation_id == conversation_id, Message.direction == "in",
            Message.status == "pending").order_by(Message.id)))
        if not pending:
            return []
        ids = [m.id for m in pending]
        # The status guard makes the claim exclusive even if two workers race.
        claimed = s.execute(update(Message).where(Message.id.in_(ids), Message.status == "pending")
                            .values(status="processing"))
        if claimed.rowcount != len(ids):  # type: ignore[attr-defined]
            raise RuntimeError(f"conversation {conversation_id}: messages claimed twice")
        for m in pending:
            journey.record(s, m.id, "turn_started", merged=len(ids))
        return pending


def _history(s: Session, conversation_id: int, before_id: int) -> list[ChatMessage]:
    rows = list(s.scalars(select(Message).where(
        Message.conversation_id == conversation_id, Message.id < before_id,
        Message.status.not_in(["failed", "stale"])).order_by(Message.id.desc())
        .limit(HISTORY_MESSAGES)))
    return [{"role": "user" if m.direction == "in" else "assistant", "content": m.text}
            for m in reversed(rows) if m.text.strip()]


def requeue_cut(sessions: sessionmaker[Session], conversation_id: int) -> int:
    """Put back in line the messages a turn took and never finished: the worker running it died.

    Only for the holder of the conversation's lease (server.services.leases): a message is
    ``processing`` only while its turn runs under that lease, so one found so by the lease's
    next holder was left by a worker that stopped.
    """
    with sessions.begin() as s:
        cut = list(s.scalars(select(Message).where(
            Message.conversation_id == conversation_id, Message.direction == "in",
            Message.status == "processing")))
        for m in cut:
            m.status = "pending"
            journey.record(s, m.id, "requeued", reason="its turn was cut off (worker stopped)")
        return len(cut)


def run(rt: Runtime, sessions: sessionmaker[Session], conversation_id: int) -> int | None:
    """Answer what is pending; returns the outbox id of the reply, or None if nothing to send.

    The caller holds the conversation's lease, so a turn another worker left half-done is
    redone here. If this turn fails, its messages go back to pending (with the error in their
    journey) and the error propagates, so the task queue tries again: nothing is left
    half-taken.
    """
    requeue_cut(sessions, conversation_id)
    pending = claim(sessions, conversation_id)
    if not pending:
        return None
    try:
        return _answer(rt, sessions, conversation_id, pending)
    except Exception as exc:
        with sessions.begin() as s:
            for m in pending:
                row = s.get_one(Message, m.id)
                if row.status == "processing":
                    row.status = "pending"
                    journey.record(s, m.id, "turn_failed", error=f"{type(exc).__name__}: {exc}")
        raise


def _answer(rt: Runtime, sessions: sessionmaker[Session], conversation_id: int,
            pending: list[Message]) -> int | None:
    with sessions.begin() as s:
        conv = s.get_one(Conversation, conversation_id)
        inst = s.get_one(Instance, conv.instance_id)
        history = _history(s, conversation_id, pending[0].id)
        mode, ai_enabled = conv.mode, inst.ai_enabled
        replies = _recent_replies(s, conversation_id, rt.settings.loop_window_seconds)
    if mode != "ai" or not ai_enabled:
        _leave_to_humans(sessions, pending, "for_human", mode=mode)
        return None
    if replies >= rt.settings.loop_replies:
        # Another bot answers every reply of ours: silence, and a human, end the loop.
        _leave_to_humans(sessions, pending, "loop_guard", conversation_too=True,
                         replies=replies, window_s=rt.settings.loop_window_seconds)
        log.warning("conversation %s: %s automatic replies in %ss, handed to a human",
                    conversation_id, replies, rt.settings.loop_window_seconds)
        return None
    question = "\n".join(m.text for m in pending)
    ans = assistant.answer(rt, sessions, question, history, assistant.use_for(rt.settings, inst))
    last = pending[-1]
    try:
        with sessions.begin() as s:
            c = ans.completion
            reply = Message(instance_id=last.instance_id, conversation_id=conversation_id,
                            direction="out", author="assistant" if c else "system",
                            text=ans.text, status="queued", reply_to_id=last.id,
                            grounding=ans.passage_ids or None, model=c.model if c else None,
                            prompt_tokens=c.prompt_tokens if c else None,
                            completion_tokens=c.completion_tokens if c else None)
            s.add(reply)
            s.flush()
            _record_usage(s, ans, inst.id, reply)
            box = Outbox(message_id=reply.id)
            s.add(box)
            for m in pending:
                s.get_one(Message, m.id).status = "handed_off" if ans.handoff else "answered"
                journey.record(s, m.id, "handed_off" if ans.handoff else "answered",
                               reply_id=reply.id, reason=ans.reason)
            journey.record(s, reply.id, "queued", reason=ans.reason,
                           passages=len(ans.passage_ids))
            if ans.handoff:
                s.get_one(Conversation, conversation_id).mode = "human"
            s.flush()
            return box.id
    except IntegrityError:
        log.warning("conversation %s: message %s already has a reply", conversation_id, last.id)
        return None


def _leave_to_humans(sessions: sessionmaker[Session], pending: list[Message], event: str, *,
                     conversation_too: bool = False, **detail: object) -> None:
    """The turn's messages go unanswered to the humans (and, ``conversation_too``, the
    conversation from now on)."""
    with sessions.begin() as s:
        for m in pending:
            s.get_one(Message, m.id).status = "handed_off"
            journey.record(s, m.id, event, **detail)
        if conversation_too:
            s.get_one(Conversation, pending[0].conversation_id).mode = "human"


def _recent_replies(s: Session, conversation_id: int, window_s: int) -> int:
    """Replies no agent wrote (the assistant's, the system's) in the last ``window_s``."""
    return s.scalar(select(func.count()).select_from(Message).where(
        Message.conversation_id == conversation_id, Message.direction == "out",
        Message.author != "agent",
        Message.created_at >= utcnow() - timedelta(seconds=window_s))) or 0


def _record_usage(s: Session, ans: assistant.Answer, instance_id: int, reply: Message) -> None:
    for model, error in ans.failures:
        s.add(LlmUsage(instance_id=instance_id, message_id=reply.id, purpose="reply",
                       model=model, error=error))
    if ans.completion and ans.spec:
        row = budget.record(s, spec=ans.spec, done=ans.completion, purpose="reply",
                            instance_id=instance_id, message_id=reply.id)
        reply.cost = row.cost
