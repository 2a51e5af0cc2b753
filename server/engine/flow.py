"""Flow mode: the conversation's session runs a stored flow (``flows.step``), and this module
carries out what the step asks, in order.

A turn feeds the customer's text to the step. Messages, tags and fields are done in one
transaction with the new state, so a turn redone after a crash neither repeats nor loses them.
An HTTP request or an AI answer is done between transactions: the step that asked for it is
committed with the request kept on the session (``pending``), the request is made, and its
result is fed to the next step. A wait is a timer the task layer schedules
(``flow_timer``). With no flow to run (none triggered and no default, or the flow was deleted),
the turn goes to AI mode.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import flows
from gateway_bridge.events import storable
from server.engine import ai, replies
from server.engine.turn import Turn
from server.runtime import Runtime
from server.schema import ChatSession, Contact, Conversation, Message, MessageEvent, utcnow
from server.services import (
    assistant,
    chat_sessions,
    contact_data,
    flow_http,
    flow_store,
    journey,
    matcher,
    people,
    queues,
    sending,
)

log = logging.getLogger(__name__)
MAX_ROUNDS = 20  # step calls in one turn (each HTTP or AI result is one); validation bounds it


@dataclass
class _Turn:
    """One flow turn's progress: the first reply answers the customer's last message."""

    turn: Turn
    boxes: list[int] = field(default_factory=list)
    replied: bool = False


def handle(rt: Runtime, sessions: sessionmaker[Session], turn: Turn) -> int | None:
    """Run the turn through the session's flow; returns the first reply's outbox id."""
    if ai.looping(rt, sessions, turn):  # a bot on the other side: the limit holds for flows too
        return None
    with sessions.begin() as s:
        started = _flow_and_state(s, turn)
        if started is None:  # nothing to run: the assistant answers, from now on too
            s.get_one(Conversation, turn.conversation_id).mode = "ai"
    if started is None:  # the loop was checked above
        if ai.only_files(turn):
            return ai.files_only(rt, sessions, replace(turn, mode="ai"))
        return ai.reply(rt, sessions, replace(turn, mode="ai"),
                        assistant.use_for(rt.settings, turn.instance)).outbox_id
    flow, state, context, left = started
    t = _Turn(turn)
    text = turn.text
    if left is not None:  # a worker stopped before this session's request had its result
        resumed = _step_on(rt, sessions, t, flow, state, context,
                           _carry_out(rt, sessions, t, left))
        fresh = _unread(sessions, turn)  # the messages that asked for it were read already
        if resumed is None or not fresh:
            _close_out(sessions, t)
            return t.boxes[0] if t.boxes else None
        state, text = resumed, replace(turn, pending=fresh).text
    _run(rt, sessions, t, flow, state, context, flows.Message(text=text, now=utcnow()))
    return t.boxes[0] if t.boxes else None


def _step_on(rt: Runtime, sessions: sessionmaker[Session], t: _Turn, flow: flows.Flow,
             state: flows.State, context: flows.Context, event: flows.Incoming
             ) -> flows.State | None:
    """Feed ``event`` and what follows from it until the flow waits for the customer; the
    state then, or None when the session ended meanwhile."""
    _run(rt, sessions, t, flow, state, context, event, close=False)
    with sessions() as s:
        sess = s.get_one(ChatSession, t.turn.session_id)
        return flows.state_from_dict(sess.state) if sess.status == "open" and sess.state \
            else None


def _unread(sessions: sessionmaker[Session], turn: Turn) -> list[Message]:
    """The turn's messages no step has read yet: a step's journey entry (``flow``) is written
    with the state it led to, so a message that has one was read before a crash."""
    with sessions() as s:
        read = set(s.scalars(select(MessageEvent.message_id).where(
            MessageEvent.message_id.in_([m.id for m in turn.pending]),
            MessageEvent.event == "flow")))
    return [m for m in turn.pending if m.id not in read]


def _run(rt: Runtime, sessions: sessionmaker[Session], t: _Turn, flow: flows.Flow,
         state: flows.State, context: flows.Context, event: flows.Incoming, *,
         close: bool = True) -> None:
    match = matcher.for_runtime(rt)
    for _ in range(MAX_ROUNDS):
        result = flows.step(flow, state, event, context=context, match=match)
        files = _files(rt, result.actions)  # fetched before the transaction, not inside it
        with sessions.begin() as s:
            ask = _apply(rt, s, t, result, files)
        state = result.state
        if ask is None:
            break
        event = _carry_out(rt, sessions, t, ask)
    if close:
        _close_out(sessions, t)


def _files(rt: Runtime, actions: tuple[flows.Action, ...]) -> dict[str, dict[str, Any] | str]:
    """The files the step's messages send, kept in the media store, or why one could not be."""
    out: dict[str, dict[str, Any] | str] = {}
    for a in actions:
        if isinstance(a, flows.SendMedia) and a.ref not in out:
            try:
                out[a.ref] = flow_http.fetch_file(a.ref, rt.settings.data_dir,
                                                  max_bytes=rt.settings.media_max_bytes,
                                                  reach=flow_http.Reach.of(rt.settings),
                                                  mime=a.mime, filename=a.filename)
            except ValueError as exc:
                out[a.ref] = str(exc)
    return out


def _apply(rt: Runtime, s: Session, t: _Turn, result: flows.Result,
           files: dict[str, dict[str, Any] | str]) -> flows.Action | None:
    """Do the step's actions that need no outside call, store the new state; return the HTTP
    request or AI question to carry out next, if the step asked for one."""
    turn = t.turn
    conv = s.get_one(Conversation, turn.conversation_id)
    sess = s.get_one(ChatSession, turn.session_id)
    ask: flows.Action | None = None
    for action in result.actions:
        if isinstance(action, flows.SendText):
            _say(s, t, action.text)
        elif isinstance(action, flows.SendMedia):
            file = files.get(action.ref)
            if isinstance(file, dict):
                _say(s, t, action.caption, type=sending.kind_of(file["mime"]), media=file)
            else:  # the file could not be had: its caption still goes, the reason is kept
                for m in turn.pending:
                    journey.record(s, m.id, "media_not_sent", ref=action.ref, reason=file)
                _say(s, t, action.caption)
        elif isinstance(action, flows.SetTag | flows.RemoveTag | flows.SetField):
            _contact_data(s, turn, conv.contact_id, action)
        elif isinstance(action, flows.HttpRequest | flows.AskAi):
            ask = action
        elif isinstance(action, flows.Wait):
            sess.timer_at = utcnow() + timedelta(seconds=action.seconds)
            sess.timer_token = secrets.token_hex(8)
        elif isinstance(action, flows.Handoff):
            handed = queues.hand_off(s, rt.settings, conv, team=action.team, now=utcnow())
            if handed.notice and (handed.outside_hours or not action.said):
                _say(s, t, handed.notice)
            for m in turn.pending:
                journey.record(s, m.id, "handed_off", team=handed.team, agent=handed.agent,
                               outside_hours=handed.outside_hours, note=action.note or None)
        elif isinstance(action, flows.EndSession):
            chat_sessions.close(s, conv, sess, turn.instance, rt.settings, by="flow",
                                now=utcnow())
    if sess.status == "open":
        sess.flow_key, sess.state = result.state.flow_id, flows.state_to_dict(result.state)
        sess.pending = flows.action_to_dict(ask) if ask is not None else None
    for m in turn.pending:
        journey.record(s, m.id, "flow", steps=result.steps, trace=list(result.trace)[:20])
    return ask


def _contact_data(s: Session, turn: Turn, contact_id: int,
                  action: flows.SetTag | flows.RemoveTag | flows.SetField) -> None:
    """Keep a flow's tag or field on the contact. One the company's data refuses (the field was
    deleted after the flow was saved, a tag name with no letter) is noted in the journey and
    the flow goes on: the value stays in the session."""
    try:
        if isinstance(action, flows.SetTag):
            contact_data.set_tag(s, contact_id, action.tag)
        elif isinstance(action, flows.RemoveTag):
            contact_data.remove_tag(s, contact_id, action.tag)
        else:
            contact_data.set_field(s, contact_id, action.key, action.value)
    except ValueError as exc:
        for m in turn.pending:
            journey.record(s, m.id, "not_kept", action=action.kind, reason=str(exc))


def _say(s: Session, t: _Turn, text: str, **fields: Any) -> None:
    text = storable(text)  # what replies.write keeps: a flow's "\0" alone says nothing
    if not text.strip() and not fields:
        return
    last = t.turn.pending[-1] if t.turn.pending else None
    reply, box = replies.write(s, instance_id=t.turn.instance.id,
                               conversation_id=t.turn.conversation_id, text=text, author="flow",
                               reply_to_id=None if t.replied or last is None else last.id,
                               **fields)
    replies.queued(s, reply, by="flow")
    t.replied = True
    t.boxes.append(box.id)


def _carry_out(rt: Runtime, sessions: sessionmaker[Session], t: _Turn,
               ask: flows.Action) -> flows.Incoming:
    """Make the request or get the AI answer the step asked for; its result, as an event."""
    if isinstance(ask, flows.HttpRequest):
        return flow_http.perform(ask, flow_http.Reach.of(rt.settings))
    assert isinstance(ask, flows.AskAi)
    if not t.turn.instance.ai_enabled:  # AI is off on this number: a person answers instead
        with sessions.begin() as s:
            conv = s.get_one(Conversation, t.turn.conversation_id)
            handed = queues.hand_off(s, rt.settings, conv, team=None, now=utcnow())
            if handed.notice:
                _say(s, t, handed.notice)
            for m in t.turn.pending:
                journey.record(s, m.id, "handed_off", reason="ai_off", team=handed.team)
        return flows.AiResult(outcome="handed_off", now=utcnow())
    use = assistant.use_for(rt.settings, t.turn.instance, collection=ask.knowledge_base or None,
                            model=ask.model or None)
    use = replace(use, max_tokens=ask.max_tokens or use.max_tokens,
                  persona=ask.persona or use.persona)
    # Files with no words at an AI node go to a person, as in AI mode, not to the assistant
    given = ai.files_answer() if ai.only_files(t.turn) else None
    done = ai.reply(rt, sessions, replace(t.turn, mode="flow"), use, close_out=False,
                    given=given)
    if done.outbox_id is not None:
        t.boxes.append(done.outbox_id)
        t.replied = True
    outcome = {"answered": "answered", "handed_off": "handed_off"}.get(done.outcome, "failed")
    return flows.AiResult(outcome=outcome, now=utcnow())


def _close_out(sessions: sessionmaker[Session], t: _Turn) -> None:
    """The turn's messages are done: answered by the flow, or handed to people."""
    with sessions.begin() as s:
        conv = s.get_one(Conversation, t.turn.conversation_id)
        outcome = "handed_off" if conv.mode == "human" else "answered"
        for m in t.turn.pending:
            row = s.get_one(Message, m.id)
            if row.status == "processing":
                row.status = outcome


def _flow_and_state(s: Session, turn: Turn) -> tuple[
        flows.Flow, flows.State, flows.Context, flows.Action | None] | None:
    """The flow the session runs, its state, and a request it left unfinished: the running
    flow, else the one the text triggers, else the number's default; None when there is none."""
    sess = s.get_one(ChatSession, turn.session_id)
    conv = s.get_one(Conversation, turn.conversation_id)
    state = flows.state_from_dict(sess.state) if sess.state else None
    flow = None
    if state is not None and state.status == "active":
        flow = _enabled(s, state.flow_id)
    left = _action(sess.pending) if flow is not None and sess.pending else None
    if flow is None:
        flow = flows.pick_flow(turn.text, flow_store.enabled_flows(s),
                               turn.instance.default_flow)
        if flow is None:
            return None
        state = flows.new_state(flow.id, tags=frozenset(contact_data.tags_of(s, conv.contact_id)),
                                fields=contact_data.fields_of(s, conv.contact_id))
    assert state is not None
    contact = s.get_one(Contact, conv.contact_id)
    context = flows.Context(contact_name=(contact.name or "").split(" ")[0],
                            contact_phone=contact.phone or "",
                            instance_name=turn.instance.name, schedules=people.schedules(s))
    return flow, state, context, left


def _enabled(s: Session, key: str) -> flows.Flow | None:
    stored = flow_store.get(s, key)
    return flow_store.load(s, key) if stored is not None and stored.enabled else None


def _action(data: dict[str, Any]) -> flows.Action | None:
    """The HTTP request or AI question kept on a session, back as its action."""
    fields_ = {k: v for k, v in data.items() if k != "kind"}
    if data.get("kind") == flows.HttpRequest.kind:
        return flows.HttpRequest(**fields_)
    if data.get("kind") == flows.AskAi.kind:
        return flows.AskAi(**fields_)
    return None


def fire_timer(rt: Runtime, sessions: sessionmaker[Session], turn: Turn, token: str,
               now: datetime) -> int | None:
    """A wait node's timer: step the session with ``TimerFired`` if it still waits on it."""
    with sessions.begin() as s:
        sess = s.get_one(ChatSession, turn.session_id)
        if sess.status != "open" or sess.timer_token != token or not sess.state:
            return None
        sess.timer_at = sess.timer_token = None
        started = _flow_and_state(s, turn)
    if started is None:
        return None
    flow, state, context, _ = started
    t = _Turn(turn, replied=True)
    _run(rt, sessions, t, flow, state, context, flows.TimerFired(now=now), close=False)
    return t.boxes[0] if t.boxes else None
