"""Logging in: passwords, throttling, web sessions, and who a request comes from.

Passwords are hashed with argon2id through pwdlib (``PasswordHash.recommended()``), never by a
recipe of our own; a hash made with older parameters is replaced at the next good login
(verify-and-update). A session is a random token in an HttpOnly cookie; the table keeps only
its SHA-256 (``server.schema.auth``), so a database dump opens no session. A session ends when
it expires (ATENDE_SESSION_HOURS), at logout (``revoked_at``), or when its user is made inactive;
nothing is deleted.

Throttling counts failed logins in ATENDE_LOGIN_WINDOW_MINUTES, by e-mail (since that e-mail's
last good login) and by address (all of them: one address trying many e-mails is the other
half of guessing). Past ATENDE_LOGIN_MAX_FAILURES the answer is "wait", with how long, before
any password is checked. Every refusal reads the same, and an unknown e-mail costs a password
check as a known one does, so neither the words nor the time tell whether an e-mail is a user's.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from pwdlib import PasswordHash
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from server.schema import LoginAttempt, Team, TeamMember, User, WebSession, utcnow
from server.services import access, api_tokens, people
from server.services.access import Principal
from server.settings import Settings

COOKIE = "atende_session"
MIN_PASSWORD = 8
_hasher = PasswordHash.recommended()


class Refused(Exception):
    """Wrong e-mail or password, or an inactive user: one answer for all."""


class Throttled(Exception):
    """Too many failures lately; ``retry_after`` seconds until the next try is checked."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins: try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Login:
    """A good login: the cookie's token (given only here) and who logged in."""

    token: str
    who: Principal
    expires_at: datetime


def hash_password(plain: str) -> str:
    """The password's argon2id hash; a ValueError if it is too short to keep."""
    if len(plain) < MIN_PASSWORD:
        raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
    return _hasher.hash(plain)


@cache
def _decoy() -> str:
    """A hash to check unknown e-mails against, so they cost what known ones do."""
    return _hasher.hash(secrets.token_urlsafe(16))


def normalized(email: str) -> str:
    return email.strip().lower()[:254]


def login(sessions: sessionmaker[Session], settings: Settings, email: str, password: str,
          ip: str, now: datetime | None = None) -> Login:
    """Check an e-mail and password and start a session; ``Throttled`` or ``Refused`` else.
    Every checked try is recorded; a throttled one is not (it checked nothing)."""
    now = now or utcnow()
    email, ip = normalized(email), ip[:64]
    with sessions.begin() as s:
        wait = retry_after(s, settings, email, ip, now)
        if wait:
            raise Throttled(wait)
        user = s.scalar(select(User).where(User.email == email))
        ok, newer = _hasher.verify_and_update(password, user.password_hash if user and
                                              user.password_hash else _decoy())
        ok = ok and user is not None and user.active and user.password_hash is not None
        s.add(LoginAttempt(email=email, ip=ip, ok=ok, at=now))
        if not ok or user is None:
            made = None
        else:
            if newer:
                user.password_hash = newer
            made = _start(s, settings, access.of_user(s, user), now)
    if made is None:
        raise Refused("wrong e-mail or password")
    return made


def retry_after(s: Session, settings: Settings, email: str, ip: str, now: datetime) -> int:
    """Seconds until this e-mail and this address may try again; 0: now."""
    window = timedelta(minutes=settings.login_window_minutes)
    since = now - window
    last_ok = s.scalar(select(func.max(LoginAttempt.at)).where(LoginAttempt.email == email,
                                                               LoginAttempt.ok.is_(True)))
    waits = [0.0]
    for who, start in ((LoginAttempt.email == email, max(since, last_ok or since)),
                       (LoginAttempt.ip == ip, since)):
        failed = list(s.scalars(select(LoginAttempt.at).where(who, LoginAttempt.ok.is_(False),
                                                              LoginAttempt.at > start)
                                .order_by(LoginAttempt.at.desc())
                                .limit(settings.login_max_failures)))
        if len(failed) >= settings.login_max_failures:
            waits.append((failed[-1] + window - now).total_seconds())
    return max(0, math.ceil(max(waits)))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _start(s: Session, settings: Settings, who: Principal, now: datetime) -> Login:
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=settings.session_hours)
    s.add(WebSession(user_id=who.user_id, token_hash=_digest(token), created_at=now,
                     expires_at=expires))
    return Login(token=token, who=who, expires_at=expires)


def start_session(sessions: sessionmaker[Session], settings: Settings, user_id: int) -> Login:
    """A session for this user without a password (for tests, and tools acting as a user)."""
    with sessions.begin() as s:
        user = s.get(User, user_id)
        if user is None:
            raise LookupError(f"no user {user_id}")
        return _start(s, settings, access.of_user(s, user), utcnow())


def session_user(s: Session, token: str, now: datetime | None = None) -> User | None:
    """The active user of this live session, if it is one."""
    return s.scalar(select(User).join(WebSession, WebSession.user_id == User.id).where(
        WebSession.token_hash == _digest(token), WebSession.revoked_at.is_(None),
        WebSession.expires_at > (now or utcnow()), User.active.is_(True)))


def logout(sessions: sessionmaker[Session], token: str) -> bool:
    """End this session; True if it was live."""
    with sessions.begin() as s:
        row = s.scalar(select(WebSession).where(WebSession.token_hash == _digest(token),
                                                WebSession.revoked_at.is_(None)))
        if row is None:
            return False
        row.revoked_at = utcnow()
        return True


def principal(sessions: sessionmaker[Session], bearer: str | None,
              cookie: str | None) -> Principal | None:
    """Who a request comes from: its bearer token if it sends one (a wrong one is no one,
    whatever cookie comes with it), else its session cookie."""
    with sessions() as s:
        if bearer:
            token = api_tokens.find(s, bearer)
            return access.of_token(token) if token is not None else None
        user = session_user(s, cookie) if cookie else None
        return access.of_user(s, user) if user is not None else None


def set_password(sessions: sessionmaker[Session], email: str, plain: str) -> None:
    """Give a user a new password (``atende users password``) and end their sessions: whoever
    knew the old one is out. LookupError for an unknown e-mail."""
    hashed = hash_password(plain)
    with sessions.begin() as s:
        user = s.scalar(select(User).where(User.email == normalized(email)))
        if user is None:
            raise LookupError(f"no user with e-mail {email!r}")
        user.password_hash = hashed
        s.execute(update(WebSession).where(WebSession.user_id == user.id,
                                           WebSession.revoked_at.is_(None))
                  .values(revoked_at=utcnow()))


def describe(sessions: sessionmaker[Session], who: Principal) -> dict[str, Any]:
    """Who this is, in words the web app shows: name, e-mail, level, teams."""
    with sessions() as s:
        user = s.get(User, who.user_id) if who.user_id is not None else None
        teams = s.execute(select(Team.id, Team.name).where(Team.id.in_(sorted(who.teams)))
                          .order_by(Team.name)).tuples()
        return {"kind": "token" if who.is_token else "user", "id": who.user_id,
                "name": user.name if user else who.token, "email": user.email if user else None,
                "level": who.level, "teams": [{"id": i, "name": n} for i, n in teams]}


def create_user(sessions: sessionmaker[Session], name: str, email: str, level: str,
                password: str) -> User:
    """A user who can log in (``atende users create``); the e-mail taken is a Conflict."""
    hashed = hash_password(password)
    with sessions.begin() as s:
        user = people.create_user(s, name, email, level)
        user.password_hash = hashed
        return user


def listing(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    """Every user with their teams, whether they have a password and when they last logged in."""
    with sessions() as s:
        teams: dict[int, list[str]] = {}
        for user_id, team in s.execute(select(TeamMember.user_id, Team.name)
                                       .join(Team, Team.id == TeamMember.team_id)
                                       .order_by(Team.name)).tuples():
            teams.setdefault(user_id, []).append(team)
        last = dict(s.execute(select(LoginAttempt.email, func.max(LoginAttempt.at))
                              .where(LoginAttempt.ok.is_(True))
                              .group_by(LoginAttempt.email)).tuples().all())
        return [{"id": u.id, "name": u.name, "email": u.email, "level": u.level,
                 "active": u.active, "teams": teams.get(u.id, []),
                 "password": u.password_hash is not None, "last_login": last.get(u.email)}
                for u in people.list_users(s)]
