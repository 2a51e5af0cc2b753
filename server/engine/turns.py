"""One turn of a conversation: take the contact's pending messages in order, find the
conversation's session (a new one on the first message, or after the last closed), and let the
mode answer them once (``HANDLERS``): ``flow`` runs the session's flow, ``ai`` the assistant,
``queued`` the assistant for what it can answer while the customer waits for a team, ``human``
leaves them to the agents. A keyword that triggers a flow starts it from AI mode too."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

import flows
from models.base import ChatMessage
from server.engine import ai, flow, voice
from server.engine.handoff import leave_to_humans
from server.engine.turn import Turn
from server.runtime import Runtime
from server.schema import ChatSession, Conversation, Instance, Message, MessageEvent, utcnow
from server.services import chat_sessions, flow_store, journey

log = logging.getLogger(__name__)
HISTORY_MESSAGES = 12
# A turn that failed this often with its messages, the first time this long ago, goes to a
# person: a failure that lasts (not a lock that timed out once, a model restarting).
TURN_TRIES, TURN_PATIENCE = 5, timedelta(minutes=1)


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


def _history(s: Session, sess: ChatSession, before_id: int) -> list[ChatMessage]:
    """The session's messages before the turn: what the assistant reads as context. An earlier
    session's are not shown (it ended; with the default retention it is forgotten)."""
    rows = list(s.scalars(select(Message).where(
        Message.conversation_id == sess.conversation_id, Message.id < before_id,
        Message.created_at >= sess.started_at,
        Message.status.not_in(["failed", "stale"])).order_by(Message.id.desc())
        .limit(HISTORY_MESSAGES)))
    return [{"role": "user" if m.direction == "in" else "assistant",
             "content": m.transcript or m.text}
            for m in reversed(rows) if (m.transcript or m.text).strip()]


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
        error = f"{type(exc).__name__}: {exc}"
        with sessions.begin() as s:
            for m in pending:
                row = s.get_one(Message, m.id)
                if row.status == "processing":
                    row.status = "pending"
                    journey.record(s, m.id, "turn_failed", error=error)
            failed, first = s.execute(select(func.count(), func.min(MessageEvent.at)).where(
                MessageEvent.message_id == pending[0].id,
                MessageEvent.event == "turn_failed")).one()
        if failed >= TURN_TRIES and first is not None and first <= utcnow() - TURN_PATIENCE:
            # The same error every time (a flow state no step can read, a knowledge base built
            # with another embedder): tried again for ever, the customer would hear nothing
            # and no person would know. A person takes the conversation; the journey says why.
            log.error("conversation %s: its turn failed %s times, handed to a person: %s",
                      conversation_id, failed, error)
            leave_to_humans(sessions, pending, "handed_off", conversation_too=True,
                            reason="turn_failed", tries=failed, error=error)
            return None
        raise


def _for_humans(rt: Runtime, sessions: sessionmaker[Session], turn: Turn) -> int | None:
    """A human answers this conversation (or AI is off on its number, or a team has it and the
    assistant does not answer while queued): the turn's messages wait for an agent."""
    leave_to_humans(sessions, turn.pending, "for_human", mode=turn.mode)
    return None


Handler = Callable[[Runtime, sessionmaker[Session], Turn], "int | None"]
HANDLERS: dict[str, Handler] = {"ai": ai.handle, "flow": flow.handle, "queued": ai.queued,
                                "human": _for_humans}


def _dispatch(rt: Runtime, sessions: sessionmaker[Session], conversation_id: int,
              pending: list[Message]) -> int | None:
    with sessions.begin() as s:
        conv = s.get_one(Conversation, conversation_id)
        inst = s.get_one(Instance, conv.instance_id)
        sess, new = chat_sessions.current(s, conv, inst, rt.settings, utcnow())
        if new:
            for m in pending:
                journey.record(s, m.id, "session_opened", session_id=sess.id, mode=conv.mode)
        turn = Turn(conversation_id, pending, inst, conv.mode,
                    _history(s, sess, pending[0].id), sess.id)
        mode = _mode(s, rt, conv, inst, turn)
    if mode != "human":  # a flow or the assistant reads voice notes as text
        turn, notice = voice.hear(rt, sessions, turn)
        if not turn.pending:
            return notice
    if mode in ("ai", "queued") and ai.only_files(turn):  # a flow's menu re-asks instead
        return ai.files_only(rt, sessions, replace(turn, mode=mode))
    return HANDLERS.get(mode, _for_humans)(rt, sessions, turn)


def _mode(s: Session, rt: Runtime, conv: Conversation, inst: Instance, turn: Turn) -> str:
    """Who answers this turn. In AI mode a flow's keyword ("menu") starts that flow."""
    if conv.mode == "human":
        waiting = conv.status == "queued" and conv.agent_replied_at is None
        return "queued" if waiting and rt.settings.answer_while_queued and inst.ai_enabled \
            else "human"
    if conv.mode == "ai" and flows.pick_flow(turn.text, flow_store.enabled_flows(s)):
        conv.mode = "flow"
    if conv.mode == "ai" and not inst.ai_enabled:
        return "human"
    return conv.mode


def timer_due(sessions: sessionmaker[Session], conversation_id: int) -> tuple[str, float] | None:
    """The open session's wait timer, as (token, seconds from now), if it has one."""
    with sessions() as s:
        sess = s.scalar(select(ChatSession).where(ChatSession.conversation_id == conversation_id,
                                                  ChatSession.status == "open"))
        if sess is None or sess.timer_at is None or sess.timer_token is None:
            return None
        return sess.timer_token, max(0.0, (sess.timer_at - utcnow()).total_seconds())


def timer(rt: Runtime, sessions: sessionmaker[Session], conversation_id: int,
          token: str) -> int | None:
    """A flow's wait is over: step its session (the caller holds the conversation's lease)."""
    with sessions.begin() as s:
        conv = s.get_one(Conversation, conversation_id)
        inst = s.get_one(Instance, conv.instance_id)
        sess = s.scalar(select(ChatSession).where(ChatSession.conversation_id == conversation_id,
                                                  ChatSession.status == "open"))
        if sess is None or conv.mode != "flow":
            return None
        turn = Turn(conversation_id, [], inst, conv.mode, [], sess.id)
    return flow.fire_timer(rt, sessions, turn, token, utcnow())
