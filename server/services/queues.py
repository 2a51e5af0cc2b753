"""Handing a conversation to people: a team's queue, round-robin among its online agents, and
the one message that tells the customer what happens next.

Every handoff goes through ``hand_off``, whatever asked for it (a flow's handoff node, a menu
whose retries ran out, the customer asking for a person, the assistant finding no answer, the
budget spent, the model failing), so the customer is told once, in the team's words: who will
answer, and, outside business hours, when. The "we are closed" message goes at most once per
the team's window, however many times the customer writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flows import Schedule
from server.schema import Conversation, Team, TeamMember, User
from server.settings import Settings

WEEKDAYS = ("segunda", "terça", "quarta", "quinta", "sexta", "sábado", "domingo")


@dataclass(frozen=True)
class Handed:
    team: str | None
    agent: str | None  # the agent it was assigned to, if one was online
    outside_hours: bool
    notice: str | None  # what to tell the customer now; None when told already


def team_for(s: Session, name: str | None) -> Team | None:
    """The team named, else the only team there is; None when neither (any agent takes it)."""
    if name:
        found = s.scalar(select(Team).where(func.lower(Team.name) == name.strip().lower()))
        if found is not None:
            return found
    teams = list(s.scalars(select(Team).limit(2)))
    return teams[0] if len(teams) == 1 else None


def hand_off(s: Session, settings: Settings, conv: Conversation, *, team: str | None,
             now: datetime) -> Handed:
    """Put the conversation in the team's queue, assigned to the online member whose last
    assignment is oldest (round-robin), or left queued when none is online or the team is
    closed. The bot stops answering it (``mode="human"``)."""
    found = team_for(s, team)
    hours = Schedule.from_dict(found.hours) if found is not None and found.hours else None
    outside = hours is not None and not hours.is_open(now)
    agent = None if outside or found is None else _next_agent(s, found, now)
    conv.mode, conv.handed_off_at, conv.agent_replied_at = "human", now, None
    conv.team_id = found.id if found is not None else None
    conv.assignee_id = agent.id if agent is not None else None
    conv.status = "assigned" if agent is not None else "queued"
    name = found.name if found is not None else "de atendimento"
    if not outside:
        text = (found.handoff_message if found is not None and found.handoff_message
                else settings.handoff_message)
        notice: str | None = text.format_map(_Fill(team=name, agent=_first(agent)))
    else:
        assert found is not None and hours is not None
        window = timedelta(minutes=found.closed_window_minutes)
        if conv.closed_notice_at is not None and now - conv.closed_notice_at < window:
            notice = None
        else:
            conv.closed_notice_at = now
            text = found.closed_message or settings.closed_message
            notice = text.format_map(_Fill(team=name, opens=_opens(hours, now)))
    return Handed(found.name if found is not None else None,
                  agent.name if agent is not None else None, outside, notice)


def _next_agent(s: Session, team: Team, now: datetime) -> User | None:
    """The team's active, online member assigned longest ago (never first); their turn moves.
    The team's row is locked first, so two handoffs at once take turns (PostgreSQL; SQLite
    has one writer)."""
    s.execute(select(Team.id).where(Team.id == team.id).with_for_update())
    row = s.execute(select(TeamMember, User).join(User, User.id == TeamMember.user_id).where(
        TeamMember.team_id == team.id, User.active.is_(True), User.online.is_(True))
        .order_by(TeamMember.last_assigned_at.asc().nulls_first(), User.id)
        .limit(1)).first()
    if row is None:
        return None
    member, user = row
    # Strictly after the team's latest assignment, so the order holds even for handoffs
    # stamped with the same instant.
    latest = s.scalar(select(func.max(TeamMember.last_assigned_at)).where(
        TeamMember.team_id == team.id))
    member.last_assigned_at = now if latest is None or now > latest else (
        latest + timedelta(microseconds=1))
    return user


def _opens(hours: Schedule, now: datetime) -> str:
    at = hours.next_opening(now)
    if at is None:
        return ""
    day = "hoje" if at.date() == now.astimezone(at.tzinfo).date() else (
        "amanhã" if at.date() == (now.astimezone(at.tzinfo) + timedelta(days=1)).date()
        else WEEKDAYS[at.weekday()])
    return f", {day} às {at:%H:%M}"


def _first(agent: User | None) -> str:
    return agent.name.split()[0] if agent is not None and agent.name.strip() else ""


class _Fill(dict[str, str]):
    """A message template's values; a placeholder the text names and we lack stays empty
    instead of failing the handoff."""

    def __missing__(self, key: str) -> str:
        return ""
