"""A conversation as an agent reads it: who it is with and who has it, and its whole history,
each entry marked by its author (customer, flow, assistant, agent — by name — or the system),
with its file and, for what we sent, its delivery state. Internal notes sit in the history where
they were written, marked as notes: they are never sent.

Reading is recorded per person (``mark_read``): how far this agent has seen, which is what the
inbox's unread counts are measured against. The pointer only moves forward.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from server.schema import (
    Contact,
    Conversation,
    ConversationRead,
    Instance,
    Message,
    Note,
    Team,
    User,
    utcnow,
)
from server.services import chat_sessions
from server.services.access import Principal
from server.services.contact_data import insert_new

DELIVERY = ("queued", "sent", "delivered", "read", "played", "failed", "deleted")


@dataclass(frozen=True)
class Header:
    id: int
    contact_id: int
    contact: str
    phone: str | None
    instance: str
    team_id: int | None
    team: str | None
    assignee_id: int | None
    assignee: str | None
    status: str  # open | queued | assigned | closed
    mode: str  # ai | flow | human
    session: dict[str, Any] | None  # the open session's flow and stage, if one is open

    @property
    def bot_answers(self) -> bool:
        """A flow or the assistant answers the customer now (a person may take over)."""
        return self.mode != "human" and self.status != "closed"


@dataclass(frozen=True)
class Entry:
    kind: str  # message | note
    id: int
    at: datetime
    author: str  # customer | flow | assistant | agent | system | note
    name: str  # who: the contact's name, the agent's, the note's writer; "" for a bot
    outbound: bool
    text: str
    type: str = "text"
    media: dict[str, Any] | None = None
    transcript: str | None = None
    status: str | None = None  # delivery state, for what we sent

    @property
    def file_url(self) -> str | None:
        """Where the page fetches the file from, when it is kept."""
        if self.kind == "message" and self.media and self.media.get("state") == "stored":
            return f"/api/messages/{self.id}/media"
        return None


def header(s: Session, conversation_id: int) -> Header:
    conv = s.get(Conversation, conversation_id)
    if conv is None:
        raise LookupError(f"conversation {conversation_id} not found")
    contact = s.get_one(Contact, conv.contact_id)
    team = s.get(Team, conv.team_id) if conv.team_id else None
    agent = s.get(User, conv.assignee_id) if conv.assignee_id else None
    sess = chat_sessions.open_session(s, conv)
    return Header(id=conv.id, contact_id=contact.id,
                  contact=contact.name or contact.phone or f"#{contact.id}", phone=contact.phone,
                  instance=s.get_one(Instance, conv.instance_id).name, team_id=conv.team_id,
                  team=team.name if team else None, assignee_id=conv.assignee_id,
                  assignee=agent.name if agent else None, status=conv.status, mode=conv.mode,
                  session=chat_sessions.describe(sess) if sess is not None else None)


def history(s: Session, conversation_id: int, contact_name: str = "") -> list[Entry]:
    """Every message and note of the conversation, oldest first."""
    agents = dict(s.execute(select(User.id, User.name).where(User.id.in_(
        select(Message.user_id).where(Message.conversation_id == conversation_id,
                                      Message.user_id.is_not(None))))).tuples().all())
    messages = [Entry(kind="message", id=m.id, at=m.created_at, author=m.author,
                     name=_name(m, agents, contact_name), outbound=m.direction == "out",
                     text=m.text, type=m.type, media=m.media, transcript=m.transcript,
                     status=m.status if m.direction == "out" else None)
               for m in s.scalars(select(Message).where(
                   Message.conversation_id == conversation_id).order_by(Message.id))]
    notes = [Entry(kind="note", id=n.id, at=n.created_at, author="note", name=n.author,
                   outbound=True, text=n.text)
             for n in s.scalars(select(Note).where(Note.conversation_id == conversation_id)
                                .order_by(Note.id))]
    # Messages keep their stored order; each note goes where its time falls among them.
    return list(heapq.merge(messages, notes, key=lambda e: e.at))


def _name(m: Message, agents: dict[int, str], contact: str) -> str:
    if m.author == "customer":
        return contact
    if m.author == "agent":
        return agents.get(m.user_id, "") if m.user_id is not None else ""
    return ""


def mark_read(s: Session, who: Principal, conversation_id: int) -> int:
    """This person has now seen the conversation to its latest message; returns that id (0 for
    a conversation without messages). A token is no person: nothing is recorded for it."""
    latest = s.scalar(select(func.max(Message.id)).where(
        Message.conversation_id == conversation_id)) or 0
    if who.user_id is None:
        return latest
    if not insert_new(s, ConversationRead, {"user_id": who.user_id,
                                            "conversation_id": conversation_id,
                                            "last_read_message_id": latest,
                                            "read_at": utcnow()},
                      ["user_id", "conversation_id"]):
        s.execute(update(ConversationRead).where(
            ConversationRead.user_id == who.user_id,
            ConversationRead.conversation_id == conversation_id,
            ConversationRead.last_read_message_id < latest)
            .values(last_read_message_id=latest, read_at=utcnow()))
    return latest
