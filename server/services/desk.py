"""What an agent does at their desk besides writing: take a conversation from the bot, give it
back, and say whether they are taking conversations now (``users.online``, which the
round-robin of ``server.services.queues`` reads).

Taking over is assigning the conversation to oneself: the bot stops (``mode="human"``), as when
an agent writes. Giving back hands it to the number's default (its flow, else the assistant),
open and unassigned, with a fresh flow state so the flow starts from its beginning on the
customer's next message instead of resuming a handoff it already made; nothing is sent.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server.schema import Conversation, Instance, WebSession, utcnow
from server.services import auth, chat_sessions, handling, people
from server.services.access import Principal


class NoPerson(handling.Refused):
    """An API token acting where a person is meant (taking a conversation, being online)."""


def _person(who: Principal) -> int:
    if who.user_id is None:
        raise NoPerson("an API token is no person: log in as the agent")
    return who.user_id


def take_over(s: Session, who: Principal, conversation_id: int) -> None:
    handling.assign(s, conversation_id, _person(who))


def claim(sessions: sessionmaker[Session], who: Principal, conversation_id: int) -> None:
    """An agent wrote in a conversation nobody has: it is theirs now, so the list says who is
    answering it and a colleague does not answer it too."""
    if who.user_id is None:
        return
    with sessions.begin() as s:
        conv = handling.conversation(s, conversation_id)
        if conv.assignee_id is None:
            handling.assign(s, conversation_id, who.user_id)


def give_back(s: Session, conversation_id: int) -> None:
    conv = handling.conversation(s, conversation_id)
    inst = s.get_one(Instance, conv.instance_id)
    sess = chat_sessions.open_session(s, conv)
    if sess is not None:
        sess.state = sess.pending = None
        sess.flow_key = None
    _to_bot(conv, chat_sessions.default_mode(inst))


def _to_bot(conv: Conversation, mode: str) -> None:
    conv.mode, conv.status, conv.assignee_id = mode, "open", None
    conv.handed_off_at = conv.agent_replied_at = None


def set_online(s: Session, who: Principal, online: bool) -> bool:
    return people.set_online(s, _person(who), online).online


def is_online(s: Session, who: Principal) -> bool:
    return who.user_id is not None and people.get_user(s, who.user_id).online


def logged_in(sessions: sessionmaker[Session], who: Principal) -> None:
    """Someone logged in: an agent at their desk takes conversations from now on."""
    if who.user_id is not None:
        with sessions.begin() as s:
            people.set_online(s, who.user_id, True)


def logging_out(sessions: sessionmaker[Session], cookie: str) -> None:
    """Someone is logging out of this session: with no other session live (a phone and a
    laptop both logged in), they take no more conversations."""
    who = auth.principal(sessions, None, cookie)
    if who is None or who.user_id is None:
        return
    with sessions.begin() as s:
        others = s.scalar(select(func.count(WebSession.id)).where(
            WebSession.user_id == who.user_id, WebSession.revoked_at.is_(None),
            WebSession.expires_at > utcnow()))
        if (others or 0) <= 1:
            people.set_online(s, who.user_id, False)
