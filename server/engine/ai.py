"""AI mode's turn: the grounded assistant answers, unless another bot is talking with ours."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.engine import replies
from server.engine.handoff import leave_to_humans
from server.engine.turn import Turn
from server.runtime import Runtime
from server.schema import Conversation, LlmUsage, Message, utcnow
from server.services import assistant, budget, journey

log = logging.getLogger(__name__)


def handle(rt: Runtime, sessions: sessionmaker[Session], turn: Turn) -> int | None:
    """Answer the turn; returns the reply's outbox id, or None when nothing is sent."""
    window = rt.settings.loop_window_seconds
    with sessions() as s:
        recent = _recent_replies(s, turn.conversation_id, window)
    if recent >= rt.settings.loop_replies:
        # Another bot answers every reply of ours: silence, and a human, end the loop.
        leave_to_humans(sessions, turn.pending, "loop_guard", conversation_too=True,
                        replies=recent, window_s=window)
        log.warning("conversation %s: %s automatic replies in %ss, handed to a human",
                    turn.conversation_id, recent, window)
        return None
    question = "\n".join(m.text for m in turn.pending)
    ans = assistant.answer(rt, sessions, question, turn.history,
                           assistant.use_for(rt.settings, turn.instance))
    last = turn.pending[-1]
    c = ans.completion
    try:
        with sessions.begin() as s:
            reply, box = replies.write(
                s, instance_id=last.instance_id, conversation_id=turn.conversation_id,
                text=ans.text, author="assistant" if c else "system", reply_to_id=last.id,
                grounding=ans.passage_ids or None, model=c.model if c else None,
                prompt_tokens=c.prompt_tokens if c else None,
                completion_tokens=c.completion_tokens if c else None)
            _record_usage(s, ans, turn.instance.id, reply)
            outcome = "handed_off" if ans.handoff else "answered"
            for m in turn.pending:
                s.get_one(Message, m.id).status = outcome
                journey.record(s, m.id, outcome, reply_id=reply.id, reason=ans.reason)
            replies.queued(s, reply, reason=ans.reason, passages=len(ans.passage_ids))
            if ans.handoff:
                s.get_one(Conversation, turn.conversation_id).mode = "human"
            return box.id
    except IntegrityError:
        log.warning("conversation %s: message %s already has a reply", turn.conversation_id,
                    last.id)
        return None


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
