"""What agents do to a conversation besides writing: hand it to a team, assign it, close it,
reopen it. The web app's buttons and the JSON API both call these.

Closing ends the session (``server.services.chat_sessions``): the next customer message starts
over with the number's flow or the assistant. Reopening gives the conversation back to a person
without a handoff: nothing is sent and no queue is entered, so resolving and reopening never
hands off again by itself.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy.orm import Session

from server.engine import replies
from server.schema import Conversation, Instance, User, utcnow
from server.services import chat_sessions, queues
from server.settings import Settings


class Refused(ValueError):
    """The action does not apply (unknown user, inactive user...); the message says why."""


def conversation(s: Session, conversation_id: int) -> Conversation:
    conv = s.get(Conversation, conversation_id)
    if conv is None:
        raise LookupError(f"conversation {conversation_id} not found")
    return conv


def hand_off(s: Session, settings: Settings, conversation_id: int, team: str | None
             ) -> dict[str, Any]:
    """An agent or an integration sends the conversation to a team's queue; the customer is
    told what happens next, as on any handoff. Returns where it went, and the outbox id of the
    notice (``notice_box``) for the caller to deliver."""
    conv = conversation(s, conversation_id)
    if team and queues.team_for(s, team) is None:
        raise Refused(f"no team named {team!r}")
    handed = queues.hand_off(s, settings, conv, team=team, now=utcnow())
    out: dict[str, Any] = {**asdict(handed), "notice_box": None}
    if handed.notice:
        reply, box = replies.write(s, instance_id=conv.instance_id, conversation_id=conv.id,
                                   text=handed.notice, author="system")
        replies.queued(s, reply, by="handoff")
        out["notice_box"] = box.id
    return out


def assign(s: Session, conversation_id: int, user_id: int) -> None:
    conv = conversation(s, conversation_id)
    user = s.get(User, user_id)
    if user is None or not user.active:
        raise Refused(f"no active user {user_id}")
    conv.assignee_id, conv.mode = user.id, "human"
    conv.status = "assigned"


def close(s: Session, settings: Settings, conversation_id: int) -> None:
    conv = conversation(s, conversation_id)
    inst = s.get_one(Instance, conv.instance_id)
    sess = chat_sessions.open_session(s, conv)
    if sess is not None:
        chat_sessions.close(s, conv, sess, inst, settings, by="agent", now=utcnow())
    else:
        conv.status, conv.mode = "closed", chat_sessions.default_mode(inst)


def reopen(s: Session, conversation_id: int, user_id: int | None = None) -> None:
    conv = conversation(s, conversation_id)
    if user_id is not None:
        assign(s, conversation_id, user_id)
    conv.mode, conv.status = "human", "assigned"
    conv.agent_replied_at = conv.agent_replied_at or utcnow()
