"""One turn of a conversation: take the contact's pending messages in order, and let the
conversation's mode answer them once (``HANDLERS``: ``ai`` now, ``flow`` next; ``human`` leaves
them to the agents)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from models.base import ChatMessage
from server.engine import ai
from server.engine.handoff import leave_to_humans
from server.engine.turn import Turn
from server.runtime import Runtime
from server.schema import Conversation, Instance, Message
from server.services import journey

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
        return _dispatch(rt, sessions, conversation_id, pending)
    except Exception as exc:
        with sessions.begin() as s:
            for m in pending:
                row = s.get_one(Message, m.id)
                if row.status == "processing":
                    row.status = "pending"
                    journey.record(s, m.id, "turn_failed", error=f"{type(exc).__name__}: {exc}")
        raise


def _for_humans(rt: Runtime, sessions: sessionmaker[Session], turn: Turn) -> int | None:
    """A human answers this conversation (or AI is off on its number): the turn's messages wait
    for an agent."""
    leave_to_humans(sessions, turn.pending, "for_human", mode=turn.mode)
    return None


Handler = Callable[[Runtime, sessionmaker[Session], Turn], "int | None"]
# Who answers a turn, by the conversation's mode. A flow is left to the humans until the flow
# engine handles it.
HANDLERS: dict[str, Handler] = {"ai": ai.handle, "human": _for_humans, "flow": _for_humans}


def _dispatch(rt: Runtime, sessions: sessionmaker[Session], conversation_id: int,
              pending: list[Message]) -> int | None:
    with sessions.begin() as s:
        conv = s.get_one(Conversation, conversation_id)
        inst = s.get_one(Instance, conv.instance_id)
        turn = Turn(conversation_id, pending, inst, conv.mode,
                    _history(s, conversation_id, pending[0].id))
    mode = turn.mode if turn.mode != "ai" or inst.ai_enabled else "human"
    return HANDLERS.get(mode, _for_humans)(rt, sessions, turn)
