"""Sessions: one contact's stretch of service on one number, and who answers in it.

A session opens with the first message of a conversation that has none open, holds the flow's
state and AI mode's memory, and closes by the flow, by an agent, or, while a bot holds it,
after ``session_idle_minutes`` without a message either way. Closing puts the conversation back
to its number's default (its flow, else the assistant), so the next message starts over instead
of inheriting a finished menu or a handoff nobody remembers. A partial unique index keeps one
session open per conversation; the turn that opens it holds the conversation's lease.

With ``session_retention="delete"`` (the default) a closed session keeps no variables, flow
state or AI memory: the customer's data lives on the contact (tags, fields) and the messages
stay as the conversation's record.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.schema import ChatSession, Conversation, Instance
from server.settings import Settings


def default_mode(instance: Instance) -> str:
    """Who answers a new session on this number: its default flow, else the assistant."""
    return "flow" if instance.default_flow else "ai"


def open_session(s: Session, conv: Conversation) -> ChatSession | None:
    return s.scalar(select(ChatSession).where(ChatSession.conversation_id == conv.id,
                                              ChatSession.status == "open"))


def current(s: Session, conv: Conversation, instance: Instance, settings: Settings,
            now: datetime) -> tuple[ChatSession, bool]:
    """The conversation's open session, a new one if it has none or the open one has been idle
    too long; returns it and whether it is new. The caller holds the conversation's lease."""
    sess = open_session(s, conv)
    if (sess is not None and conv.mode != "human"
            and now - sess.last_activity_at > _idle(settings)):
        close(s, conv, sess, instance, settings, by="idle", now=now)
        sess = None
    if sess is not None:
        sess.last_activity_at = now
        return sess, False
    if conv.status == "closed":  # reopened by the customer: a new start, no old handoff
        conv.status, conv.mode = "open", default_mode(instance)
    elif conv.mode == "ai" and instance.default_flow:  # the number has a flow now
        conv.mode = "flow"
    sess = ChatSession(conversation_id=conv.id, status="open", started_at=now,
                       last_activity_at=now)
    s.add(sess)
    s.flush()
    return sess, True


def close(s: Session, conv: Conversation, sess: ChatSession, instance: Instance,
          settings: Settings, *, by: str, now: datetime) -> None:
    """End the session (``by``: flow, agent, idle): the conversation goes back to its number's
    default, and, unless kept, the session's data is deleted."""
    sess.status, sess.closed_at, sess.closed_by = "closed", now, by
    sess.timer_at = sess.timer_token = None
    if settings.session_retention == "delete":
        sess.state = sess.pending = sess.answers = None
    conv.status, conv.mode = "closed", default_mode(instance)
    conv.handed_off_at = conv.agent_replied_at = None


def close_idle(s: Session, settings: Settings, now: datetime) -> int:
    """Close the sessions a bot holds that have been idle past the setting (the periodic
    sweep); returns how many. One a person holds (queued, or an agent's) waits for the agent to
    close it: a customer in a queue is never dropped from it by a clock."""
    idle = list(s.scalars(select(ChatSession).join(
        Conversation, Conversation.id == ChatSession.conversation_id).where(
        ChatSession.status == "open", Conversation.mode != "human",
        ChatSession.last_activity_at < now - _idle(settings)).limit(500)))
    for sess in idle:
        conv = s.get_one(Conversation, sess.conversation_id)
        close(s, conv, sess, s.get_one(Instance, conv.instance_id), settings, by="idle", now=now)
    return len(idle)


def timers_due(s: Session, before: datetime) -> list[tuple[int, str]]:
    """(conversation, token) of open sessions whose wait timer was due before ``before``."""
    rows = s.execute(select(ChatSession.conversation_id, ChatSession.timer_token).where(
        ChatSession.status == "open", ChatSession.timer_at < before,
        ChatSession.timer_token.is_not(None)).limit(500)).tuples()
    return [(c, t) for c, t in rows if t is not None]


def touch(s: Session, conversation_id: int, now: datetime) -> None:
    """A message went out (an agent's, a scheduled one): the session is not idle."""
    s.execute(update(ChatSession).where(ChatSession.conversation_id == conversation_id,
                                        ChatSession.status == "open")
              .values(last_activity_at=now))


def describe(sess: ChatSession) -> dict[str, Any]:
    """What the simulator and the API show of a session: its flow, stage and variables."""
    state = sess.state or {}
    return {"id": sess.id, "flow": sess.flow_key, "node": state.get("node"),
            "waiting_for": state.get("waiting_for"), "status": state.get("status"),
            "vars": state.get("vars", {}), "fields": state.get("fields", {}),
            "tags": state.get("tags", []), "started_at": sess.started_at.isoformat()}


def _idle(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.session_idle_minutes)
