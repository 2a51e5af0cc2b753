"""The inbox's list: the conversations a person may see, filtered, latest customer activity
first, a page at a time, each with its unread count for that person.

"Open", "pending" and "closed" are what agents call the conversation's states: pending is
waiting for a person (queued: handed to a team, no agent yet), open is being answered (by a
bot, or by an agent who has it), closed is resolved. Unread is per person: the customer's
messages after the last one this person has seen (``conversation_reads``), so two agents of one
team each keep their own count. A page is a keyset (``before``: the last row's activity and
id), so the 1,000th page costs what the first does; the order is the expression
``ix_conversations_activity`` indexes (``server.schema.inbox.ACTIVITY``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from server.schema import (
    Contact,
    ContactTag,
    Conversation,
    ConversationRead,
    Instance,
    Message,
    Tag,
    Team,
    TeamMember,
    User,
)
from server.schema.inbox import ACTIVITY
from server.services.access import Principal, visible

STATES = {"open": ("open", "assigned"), "pending": ("queued",), "closed": ("closed",),
          "active": ("open", "assigned", "queued")}
Cursor = tuple[datetime, int]  # (activity, id) of the last row of the page before


@dataclass(frozen=True)
class InboxFilter:
    """What the list shows. ``status``: active (open and pending, the default), open, pending,
    closed, or all. ``team``/``agent``: an id, or "none" (no team: the common queue; no agent:
    unassigned); ``agent`` also takes "me"."""

    status: str = "active"
    team: int | str | None = None
    agent: int | str | None = None
    instance: int | None = None
    tag: int | None = None
    unread: bool = False


@dataclass(frozen=True)
class Row:
    id: int
    contact_id: int
    contact: str  # the name, else the phone
    phone: str | None
    instance: str
    team: str | None
    assignee: str | None
    assignee_id: int | None
    status: str
    mode: str
    activity: datetime
    unread: int
    last_text: str
    last_author: str | None
    last_status: str | None  # the latest message's delivery state when it was ours

    @property
    def cursor(self) -> str:
        return f"{self.activity.isoformat()}_{self.id}"


def parse_cursor(text: str | None) -> Cursor | None:
    """A page's ``before`` as the listing takes it; None for none or a malformed one (the first
    page: a stale link never fails)."""
    if not text:
        return None
    at, _, ident = text.rpartition("_")
    try:
        return datetime.fromisoformat(at), int(ident)
    except ValueError:
        return None


def listing(s: Session, who: Principal, filters: InboxFilter, *, limit: int = 50,
            before: Cursor | None = None) -> list[Row]:
    """A page of the conversations ``who`` may see that match ``filters``."""
    reader = who.user_id if who.user_id is not None else -1  # a token has read nothing
    last_read = (select(ConversationRead.last_read_message_id)
                 .where(ConversationRead.user_id == reader,
                        ConversationRead.conversation_id == Conversation.id)
                 .scalar_subquery())
    unseen = and_(Message.conversation_id == Conversation.id, Message.direction == "in",
                  Message.id > func.coalesce(last_read, 0))
    unread = select(func.count(Message.id)).where(unseen).scalar_subquery()
    latest = (select(func.max(Message.id)).where(Message.conversation_id == Conversation.id)
              .scalar_subquery())
    order = ACTIVITY  # the indexed expression, by name: the planner matches it
    query = (
        select(Conversation, Contact, order.label("activity"), unread.label("unread"),
               latest.label("latest"))
        .join(Contact, Contact.id == Conversation.contact_id)
        .where(visible(who), *_conditions(who, filters)))
    if filters.unread:
        query = query.where(exists(select(Message.id).where(unseen)))
    if before is not None:
        at, ident = before
        query = query.where(or_(order < at, and_(order == at, Conversation.id < ident)))
    rows = s.execute(query.order_by(order.desc(), Conversation.id.desc())
                     .limit(max(1, min(limit, 200)))).tuples().all()
    names = _names(s, [row[0] for row in rows])
    lasts = {m.id: m for m in s.scalars(select(Message).where(
        Message.id.in_([row[4] for row in rows if row[4] is not None])))}
    out = []
    for conv, contact, activity, count, last_id in rows:
        last = lasts.get(last_id) if last_id is not None else None
        out.append(Row(
            id=conv.id, contact_id=contact.id, contact=contact.name or contact.phone or "",
            phone=contact.phone, instance=names["instance"].get(conv.instance_id, ""),
            team=names["team"].get(conv.team_id) if conv.team_id else None,
            assignee=names["user"].get(conv.assignee_id) if conv.assignee_id else None,
            assignee_id=conv.assignee_id, status=conv.status, mode=conv.mode,
            activity=activity if isinstance(activity, datetime) else conv.created_at,
            unread=count, last_text=_preview(last), last_author=last.author if last else None,
            last_status=last.status if last is not None and last.direction == "out" else None))
    return out


def _conditions(who: Principal, f: InboxFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.status in STATES:
        where.append(Conversation.status.in_(STATES[f.status]))
    if f.team == "none":
        where.append(Conversation.team_id.is_(None))
    elif isinstance(f.team, int):
        where.append(Conversation.team_id == f.team)
    agent = who.user_id if f.agent == "me" else f.agent
    if agent == "none":
        where.append(Conversation.assignee_id.is_(None))
    elif isinstance(agent, int):
        where.append(Conversation.assignee_id == agent)
    elif f.agent == "me":  # a token is no one: nothing is its own
        where.append(Conversation.id.is_(None))
    if f.instance is not None:
        where.append(Conversation.instance_id == f.instance)
    if f.tag is not None:
        where.append(exists(select(ContactTag.contact_id).where(
            ContactTag.contact_id == Conversation.contact_id, ContactTag.tag_id == f.tag)))
    return where


def _names(s: Session, convs: list[Conversation]) -> dict[str, dict[int, str]]:
    """Instance, team and user names for a page, in three small queries."""
    def of(model: type[Instance] | type[Team] | type[User], ids: set[int | None]
           ) -> dict[int, str]:
        wanted = sorted(i for i in ids if i is not None)
        if not wanted:
            return {}
        return dict(s.execute(select(model.id, model.name).where(model.id.in_(wanted)))
                    .tuples().all())

    return {"instance": of(Instance, {c.instance_id for c in convs}),
            "team": of(Team, {c.team_id for c in convs}),
            "user": of(User, {c.assignee_id for c in convs})}


def _preview(m: Message | None, width: int = 90) -> str:
    if m is None:
        return ""
    text = " ".join((m.text or m.transcript or "").split())
    if not text and m.type != "text":
        text = f"[{m.type}]"
    return text if len(text) <= width else text[:width - 1] + "…"


@dataclass(frozen=True)
class Choices:
    """What the filters offer this person: the teams, agents, numbers and tags they may pick."""

    teams: list[tuple[int, str]]
    agents: list[tuple[int, str]]
    instances: list[tuple[int, str]]
    tags: list[tuple[int, str]]


def choices(s: Session, who: Principal) -> Choices:
    """An admin picks among all teams; anyone else among their own (the list shows no more)."""
    teams = select(Team.id, Team.name).order_by(Team.name)
    agents = select(User.id, User.name).where(User.active.is_(True)).order_by(User.name)
    if not who.at_least("admin"):
        mine = sorted(who.teams)
        teams = teams.where(Team.id.in_(mine))
        agents = agents.where(or_(User.id == (who.user_id or -1), User.id.in_(
            select(TeamMember.user_id).where(TeamMember.team_id.in_(mine)))))
    return Choices(
        teams=list(s.execute(teams).tuples()), agents=list(s.execute(agents).tuples()),
        instances=list(s.execute(select(Instance.id, Instance.name).order_by(Instance.name))
                       .tuples()),
        tags=list(s.execute(select(Tag.id, Tag.name).order_by(Tag.name)).tuples()))
