"""AI mode: the grounded assistant answers, unless another bot is talking with ours.

``reply`` is the one AI answer, for a conversation in AI mode, a flow's AI node and a
conversation waiting in a queue alike: it asks the assistant, writes the reply and its usage,
and, when the assistant hands off, puts the conversation in a team's queue with the one message
that says what happens next (``server.services.queues``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.engine import replies
from server.engine.handoff import leave_to_humans
from server.engine.turn import Turn
from server.runtime import Runtime
from server.schema import ChatSession, Conversation, LlmUsage, Message, MessageEvent, utcnow
from server.services import assistant, budget, followups, journey, queues

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replied:
    outcome: str  # answered | handed_off | failed | silent (queued: left to the agent)
    outbox_id: int | None


def handle(rt: Runtime, sessions: sessionmaker[Session], turn: Turn) -> int | None:
    """AI mode's turn; returns the reply's outbox id, or None when nothing is sent."""
    if looping(rt, sessions, turn):
        return None
    return reply(rt, sessions, turn, assistant.use_for(rt.settings, turn.instance)).outbox_id


def queued(rt: Runtime, sessions: sessionmaker[Session], turn: Turn) -> int | None:
    """A conversation waits in a team's queue and no agent has answered: the assistant still
    answers what its documents answer; anything else waits for the agent, in silence (the
    customer was already told a person is coming). Once the loop guard has stopped another
    bot in this session, nothing more is answered while it waits: the guard's handoff does not
    end the wait, and answering would start the loop again after each window."""
    if _looped(sessions, turn):
        leave_to_humans(sessions, turn.pending, "for_human", reason="loop_guard", queued=True)
        return None
    if looping(rt, sessions, turn):
        return None
    return reply(rt, sessions, turn, assistant.use_for(rt.settings, turn.instance),
                 quiet_handoff=True).outbox_id


FILES = ("image", "document", "video")  # what the assistant cannot read (audio is heard)


def only_files(turn: Turn) -> bool:
    """The turn is files with no words: no caption, no voice note (one heard as silence is
    the empty text the assistant answers, not a file)."""
    return not turn.text and all(m.type in FILES for m in turn.pending)


def files_answer() -> assistant.Answer:
    """The answer to files with no words: a person takes them (the lead says why)."""
    return assistant.Answer("", handoff=True, reason="files")


def files_only(rt: Runtime, sessions: sessionmaker[Session], turn: Turn) -> int | None:
    """Files with no words (a receipt's photo, a document, a video): the assistant reads only
    text, so a person takes them and the customer is told so. Left silent, such a message
    waited unseen until the customer wrote again. One waiting in a queue already goes to the
    agents without a word: the customer was told a person is coming."""
    if turn.mode != "queued" and looping(rt, sessions, turn):
        return None
    return reply(rt, sessions, turn, assistant.use_for(rt.settings, turn.instance),
                 given=files_answer(), quiet_handoff=turn.mode == "queued").outbox_id


def reply(rt: Runtime, sessions: sessionmaker[Session], turn: Turn, use: assistant.Use, *,
          team: str | None = None, quiet_handoff: bool = False, close_out: bool = True,
          given: assistant.Answer | None = None) -> Replied:
    """Answer the turn's text with ``use``; a handoff goes to ``team`` (none: the only team,
    or any agent). ``quiet_handoff``: a handoff sends nothing and leaves the messages to
    people. ``close_out``: mark the turn's messages answered or handed off (a flow marks its
    own). ``given``: the answer, decided without the documents."""
    question = followups.standalone(turn.text, turn.history)
    last = turn.pending[-1]
    cached = None if given else _remembered(sessions, turn, question)
    ans = given or cached or assistant.answer(rt, sessions, question, turn.history, use)
    if ans.handoff and quiet_handoff:
        leave_to_humans(sessions, turn.pending, "for_human", reason=ans.reason, queued=True)
        return Replied("silent", None)
    c = ans.completion
    try:
        with sessions.begin() as s:
            text, detail = ans.text, {}
            if ans.handoff:
                conv = s.get_one(Conversation, turn.conversation_id)
                handed = queues.hand_off(s, rt.settings, conv, team=team, now=utcnow())
                text = assistant.handoff_text(ans.reason, handed.notice)
                detail = {"team": handed.team, "agent": handed.agent,
                          "outside_hours": handed.outside_hours}
            if not text:
                for m in turn.pending:
                    s.get_one(Message, m.id).status = "handed_off"
                    journey.record(s, m.id, "handed_off", reason=ans.reason, **detail)
                return Replied("handed_off", None)
            replied = s.scalar(select(Message.id).where(Message.reply_to_id == last.id))
            reply_, box = replies.write(
                s, instance_id=last.instance_id, conversation_id=turn.conversation_id,
                text=text, author="assistant" if c or cached else "system",
                reply_to_id=None if replied else last.id,
                grounding=ans.passage_ids or None, model=c.model if c else None,
                prompt_tokens=c.prompt_tokens if c else None,
                completion_tokens=c.completion_tokens if c else None)
            _record_usage(s, ans, turn.instance.id, reply_)
            outcome = "handed_off" if ans.handoff else "answered"
            for m in turn.pending:
                if close_out:
                    s.get_one(Message, m.id).status = outcome
                journey.record(s, m.id, outcome, reply_id=reply_.id, reason=ans.reason,
                               **({"from_memory": True} if cached else {}),
                               **({"asked": question} if question != turn.text else {}),
                               **detail)
            replies.queued(s, reply_, reason=ans.reason, passages=len(ans.passage_ids))
            if not ans.handoff and not cached and c is not None:
                _remember(s, turn.session_id, question, reply_.id)
            return Replied(outcome, box.id)
    except IntegrityError:
        log.warning("conversation %s: message %s already has a reply", turn.conversation_id,
                    last.id)
        return Replied("answered", None)


def looping(rt: Runtime, sessions: sessionmaker[Session], turn: Turn) -> bool:
    """Another bot answers every reply of ours: silence, and a human, end the loop."""
    window = rt.settings.loop_window_seconds
    with sessions() as s:
        recent = _recent_replies(s, turn.conversation_id, window)
    if recent < rt.settings.loop_replies:
        return False
    leave_to_humans(sessions, turn.pending, "loop_guard", conversation_too=True,
                    replies=recent, window_s=window)
    log.warning("conversation %s: %s automatic replies in %ss, handed to a human",
                turn.conversation_id, recent, window)
    return True


def _looped(sessions: sessionmaker[Session], turn: Turn) -> bool:
    """Whether the loop guard stopped the replies in this chat session."""
    with sessions() as s:
        opened = s.scalar(select(ChatSession.started_at).where(ChatSession.id == turn.session_id))
        return opened is not None and s.scalar(select(exists().where(
            MessageEvent.event == "loop_guard", MessageEvent.at >= opened,
            Message.id == MessageEvent.message_id,
            Message.conversation_id == turn.conversation_id))) is True


def _recent_replies(s: Session, conversation_id: int, window_s: int) -> int:
    """Replies no agent wrote (the assistant's, a flow's, the system's) in the last
    ``window_s``."""
    return s.scalar(select(func.count()).select_from(Message).where(
        Message.conversation_id == conversation_id, Message.direction == "out",
        Message.author != "agent",
        Message.created_at >= utcnow() - timedelta(seconds=window_s))) or 0


def _remembered(sessions: sessionmaker[Session], turn: Turn,
                question: str) -> assistant.Answer | None:
    """The same question asked again in this session: the stored answer, no model call."""
    key = followups.key(question)
    with sessions() as s:
        sess = s.get(ChatSession, turn.session_id)
        reply_id = (sess.answers or {}).get(key) if sess is not None and key else None
        earlier = s.get(Message, reply_id) if reply_id else None
        if earlier is None or not earlier.text:
            return None
        return assistant.Answer(earlier.text, reason="repeated",
                                passage_ids=list(earlier.grounding or []))


def _remember(s: Session, session_id: int, question: str, reply_id: int) -> None:
    sess = s.get(ChatSession, session_id)
    key = followups.key(question)
    if sess is not None and key:
        sess.answers = {**(sess.answers or {}), key: reply_id}


def _record_usage(s: Session, ans: assistant.Answer, instance_id: int, reply: Message) -> None:
    for model, error in ans.failures:
        s.add(LlmUsage(instance_id=instance_id, message_id=reply.id, purpose="reply",
                       model=model, error=error))
    if ans.reason == "repeated":  # answered from the session's memory: counted, costs nothing
        s.add(LlmUsage(instance_id=instance_id, message_id=reply.id, purpose="memory",
                       model="memory"))
    if ans.completion and ans.spec:
        row = budget.record(s, spec=ans.spec, done=ans.completion, purpose="reply",
                            instance_id=instance_id, message_id=reply.id)
        reply.cost = row.cost
