"""Who may see what: levels, and which conversations, messages and contacts a caller reaches.

Levels are ordered agent < manager < admin; a route names the least level it wants
(``server.deps.require``). An admin sees everything. A manager or an agent sees the
conversations of their teams, the ones assigned to them, and the ones with no team: the common
queue, where the assistant or a flow answers before any handoff, and where a person may need to
step in before anyone has picked a team. A contact is seen through its conversations: visible
if one of them is. A token bound to a level (``atende tokens create --level``) is in no team, so
below admin it sees the common queue only.

What a caller may not see is answered as if it did not exist (404, with the words an unknown id
gets), so ids cannot be probed to learn what another team handles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, exists, not_, or_, select, true
from sqlalchemy.orm import Session

from server.schema import ApiToken, Contact, Conversation, Message, TeamMember, User

LEVELS = ("agent", "manager", "admin")  # least first


def rank(level: str | None) -> int:
    """A level's place in LEVELS; -1 for none (a token of the OpenAI-compatible endpoint)."""
    return LEVELS.index(level) if level in LEVELS else -1


@dataclass(frozen=True)
class Principal:
    """Who makes a request: a logged-in user, or an API token (``token`` is its name)."""

    level: str | None
    user_id: int | None = None
    token: str | None = None
    teams: frozenset[int] = field(default_factory=frozenset)
    name: str = ""  # shown in the pages' header

    @property
    def is_token(self) -> bool:
        return self.token is not None

    def at_least(self, level: str) -> bool:
        return rank(self.level) >= rank(level)


def of_user(s: Session, user: User) -> Principal:
    teams = s.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user.id))
    return Principal(level=user.level, user_id=user.id, teams=frozenset(teams), name=user.name)


def of_token(token: ApiToken) -> Principal:
    return Principal(level=token.level, token=token.name, name=token.name)


def visible(who: Principal) -> ColumnElement[bool]:
    """The conversations this caller may see, as a WHERE clause on ``Conversation``."""
    if who.at_least("admin"):
        return true()
    mine: list[ColumnElement[bool]] = [Conversation.team_id.is_(None)]
    if who.teams:
        mine.append(Conversation.team_id.in_(sorted(who.teams)))
    if who.user_id is not None:
        mine.append(Conversation.assignee_id == who.user_id)
    return or_(*mine)


def sees_conversation(s: Session, who: Principal, conversation_id: int) -> bool:
    """Whether the caller may see this conversation (an admin: always, even an unknown id,
    which its route then answers as unknown)."""
    if who.at_least("admin"):
        return True
    return bool(s.scalar(select(exists().where(Conversation.id == conversation_id,
                                               visible(who)))))


def sees_message(s: Session, who: Principal, message_id: int) -> bool:
    if who.at_least("admin"):
        return True
    return bool(s.scalar(select(exists().where(
        Message.id == message_id, Conversation.id == Message.conversation_id, visible(who)))))


def sees_contact(s: Session, who: Principal, contact_id: int) -> bool:
    if who.at_least("admin"):
        return True
    found = s.scalar(select(Contact.id).where(Contact.id == contact_id, sees_contacts(who)))
    return found is not None


def sees_contacts(who: Principal, *narrower: ColumnElement[bool]) -> ColumnElement[bool]:
    """The contacts ``who`` may see, as a condition on ``Contact``: those with a conversation
    they may see, and those with none yet (imported, or added by hand). A contact who never
    wrote belongs to no team, like the common queue: every agent may find and greet them."""
    if who.at_least("admin"):
        return and_(true(), *narrower)
    theirs = exists().where(Conversation.contact_id == Contact.id, visible(who))
    anyone = exists().where(Conversation.contact_id == Contact.id)
    return and_(or_(theirs, not_(anyone)), *narrower)
