"""People: the company's users and the teams they answer in, with each team's business hours.

Users are never deleted: a conversation keeps who answered it, so leaving is ``active=False``
(and offline). An e-mail is checked and normalized by ``email-validator`` (no DNS look-up: a
person notices a typo'd domain) and kept in lower case, so "Ana@Loja.com" and "ana@loja.com"
are one user. A team's hours are checked by ``flows.Schedule.from_dict`` when saved, so a
mistake is told to the admin who made it, not met at a customer's message; they are kept as
given, and ``schedules`` hands them to the conversation engine as ``Schedule`` objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast
from zoneinfo import ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from flows.conditions import Schedule
from server.schema import Team, TeamMember, User
from server.services import flow_store
from server.services.contact_data import Conflict, Invalid, flush_or_conflict, insert_new

LEVELS = ("admin", "manager", "agent")
HOURS_KEYS = frozenset({"timezone", "hours", "closed"})
MAX_MESSAGE = 4000
MAX_WINDOW = 60 * 24 * 365  # closed_window_minutes: a year at most (and no integer overflow)


def email_address(text: str) -> str:
    """The address as kept, or a ValueError saying what is wrong with it."""
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise Invalid(f"email {text!r}: {exc}", "email") from None


def list_users(s: Session) -> list[User]:
    return list(s.scalars(select(User).order_by(User.name, User.id)))


def get_user(s: Session, user_id: int) -> User:
    user = s.get(User, user_id)
    if user is None:
        raise LookupError(f"no user {user_id}")
    return user


def create_user(s: Session, name: str, email: str, level: str = "agent") -> User:
    """A new active user, offline until they log in; a taken e-mail is a Conflict."""
    user = User(name=_name(name, 120, "user"), email=email_address(email), level=_level(level),
                active=True, online=False)
    s.add(user)
    flush_or_conflict(s, f"a user with e-mail {user.email!r} exists", "email")
    return user


def update_user(s: Session, user_id: int, changes: dict[str, Any]) -> User:
    """Change a user's name, e-mail, level or ``active``. Deactivating takes them offline and
    keeps everything they did, and their teams, for when they come back."""
    user = get_user(s, user_id)
    was_admin = user.level == "admin" and user.active
    if changes.get("name") is not None:
        user.name = _name(changes["name"], 120, "user")
    if changes.get("email") is not None:
        user.email = email_address(changes["email"])
    if changes.get("level") is not None:
        user.level = _level(changes["level"])
    if changes.get("active") is not None:
        user.active = bool(changes["active"])
        user.online = user.online and user.active
    if was_admin and not (user.level == "admin" and user.active):
        _another_admin(s, user)
    flush_or_conflict(s, f"a user with e-mail {user.email!r} exists", "email")
    return user


def _another_admin(s: Session, user: User) -> None:
    """Refuse to demote or deactivate the last active admin: no one could undo it (nor add
    users, numbers or teams) short of the CLI on the server. The other admins' rows are
    locked, so two admins demoting each other at once cannot both pass."""
    others = s.scalars(select(User.id).where(User.level == "admin", User.active.is_(True),
                                             User.id != user.id).with_for_update()).all()
    if not others:
        raise Conflict("the last active admin cannot be demoted or deactivated: make "
                       "another user admin first", "active" if not user.active else "level")


def set_online(s: Session, user_id: int, online: bool) -> User:
    """Whether the user takes conversations now; an inactive user cannot (a Conflict)."""
    user = get_user(s, user_id)
    if online and not user.active:
        raise Conflict(f"user {user_id} is inactive: activate them first")
    user.online = online
    s.flush()
    return user


def check_hours(hours: Mapping[str, Any]) -> Schedule:
    """A team's hours as a ``Schedule``, or a ValueError naming what is wrong with them."""
    unknown = set(hours) - HOURS_KEYS
    if unknown:
        raise Invalid(f"hours: unknown keys {sorted(unknown)}; known: {sorted(HOURS_KEYS)}",
                      "hours")
    try:
        schedule = Schedule.from_dict(hours)
    except ZoneInfoNotFoundError:
        raise Invalid(f"hours: no time zone {hours.get('timezone')!r}; write one like "
                      "America/Sao_Paulo", "timezone") from None
    except (ValueError, TypeError) as exc:
        raise Invalid(f"hours: {exc}", "hours") from None
    if not any(schedule.hours.values()):
        raise Invalid("hours: no day has an interval, so the team would never be open; "
                      "leave hours null for always open", "hours")
    return schedule


def schedules(s: Session) -> dict[str, Schedule]:
    """Each team's hours by team name, for teams that have them (the others are always open)."""
    rows = s.execute(select(Team.name, Team.hours)).tuples()  # None may be JSON null: not SQL's
    return {name: Schedule.from_dict(hours) for name, hours in rows if hours is not None}


def list_teams(s: Session) -> list[Team]:
    return list(s.scalars(select(Team).order_by(Team.name)))


def get_team(s: Session, team_id: int) -> Team:
    team = s.get(Team, team_id)
    if team is None:
        raise LookupError(f"no team {team_id}")
    return team


def get_team_by_name(s: Session, name: str) -> Team | None:
    """The team of this exact name, or None."""
    return s.scalar(select(Team).where(Team.name == name))


def create_team(s: Session, name: str, hours: Mapping[str, Any] | None = None,
                handoff_message: str | None = None, closed_message: str | None = None,
                closed_window_minutes: int = 720) -> Team:
    """A new team, without members; a taken name is a Conflict."""
    team = Team(name=_name(name, 64, "team"), closed_window_minutes=720)
    _apply(team, {"hours": hours, "handoff_message": handoff_message,
                  "closed_message": closed_message,
                  "closed_window_minutes": closed_window_minutes})
    s.add(team)
    flush_or_conflict(s, f"a team {team.name!r} exists", "name")
    return team


def update_team(s: Session, team_id: int, changes: dict[str, Any]) -> Team:
    """Change a team's name, hours (None: always open), messages (None: the settings' default)
    or ``closed_window_minutes``."""
    team = get_team(s, team_id)
    was = team.name
    if changes.get("name") is not None:
        team.name = _name(changes["name"], 64, "team")
    _apply(team, {k: v for k, v in changes.items() if k != "name"})
    flush_or_conflict(s, f"a team {team.name!r} exists", "name")
    if team.name != was:  # the flows that hand off to it, or read its hours, follow
        flow_store.follow_team_rename(s, was, team.name)
    return team


def members(s: Session, team_ids: list[int]) -> dict[int, list[User]]:
    """The members of each of these teams, by name."""
    out: dict[int, list[User]] = {t: [] for t in team_ids}
    rows = s.execute(select(TeamMember.team_id, User).join(User, User.id == TeamMember.user_id)
                     .where(TeamMember.team_id.in_(team_ids)).order_by(User.name, User.id))
    for team_id, user in rows.tuples():
        out[team_id].append(user)
    return out


def add_member(s: Session, team_id: int, user_id: int) -> bool:
    """Put a user in a team; True if they were not in it."""
    get_team(s, team_id)
    get_user(s, user_id)
    return insert_new(s, TeamMember, {"team_id": team_id, "user_id": user_id},
                      ["team_id", "user_id"])


def remove_member(s: Session, team_id: int, user_id: int) -> bool:
    """Take a user out of a team; True if they were in it. Their conversations stay theirs."""
    get_team(s, team_id)
    gone = s.execute(delete(TeamMember).where(TeamMember.team_id == team_id,
                                              TeamMember.user_id == user_id))
    return bool(cast(CursorResult[Any], gone).rowcount)


def teams_of(s: Session, user_id: int) -> set[int]:
    """The ids of the user's teams."""
    return set(s.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user_id)))


def set_teams(s: Session, user_id: int, team_ids: set[int]) -> None:
    """Put the user in exactly these teams (an unknown team is a LookupError): taken out of
    the others, their conversations staying theirs."""
    for team_id in team_ids - teams_of(s, user_id):
        add_member(s, team_id, user_id)
    for team_id in teams_of(s, user_id) - team_ids:
        remove_member(s, team_id, user_id)


def _apply(team: Team, changes: Mapping[str, Any]) -> None:
    if "hours" in changes:
        hours = changes["hours"]
        if hours is not None:
            check_hours(hours)
        team.hours = dict(hours) if hours is not None else None
    for key in ("handoff_message", "closed_message"):
        if key in changes:
            if len(changes[key] or "") > MAX_MESSAGE:
                raise Invalid(f"{key} has at most {MAX_MESSAGE} characters", key)
            setattr(team, key, (changes[key] or "").strip() or None)
    if changes.get("closed_window_minutes") is not None:
        minutes = changes["closed_window_minutes"]
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not (
                1 <= minutes <= MAX_WINDOW):
            raise Invalid(f"closed_window_minutes must be a whole number from 1 to {MAX_WINDOW}"
                          " (a year)", "closed_window_minutes")
        team.closed_window_minutes = minutes


def _name(name: str, longest: int, what: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > longest:
        raise Invalid(f"a {what}'s name has 1 to {longest} characters", "name")
    return name


def _level(level: str) -> str:
    if level not in LEVELS:
        raise Invalid(f"level {level!r} is not one of {', '.join(LEVELS)}", "level")
    return level
