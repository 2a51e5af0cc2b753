"""API tokens for integrations: shown once, stored as a hash, revocable.

Two kinds share the table. A token bound to a knowledge base (``collection``, no level) is for
the OpenAI-compatible endpoint (/v1) only. A token bound to a level (admin, manager, agent)
reaches the API under /api as a user of that level in no team would
(``server.services.access``); it never answers on /v1.

``ATENDE_ADMIN_TOKEN`` is one of them: the token named ``ATENDE_ADMIN_TOKEN``, level admin,
whose hash follows the setting (``ensure_setting``, run at start-up, by the CLI, and before a
bearer token is looked up), so it is checked against the hashed table like any other and never
compared in the clear. Tokens are random (256 bits) and looked up by their SHA-256: a slow
password hash would add nothing to a secret no one can guess, and cost every request.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import weakref

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.schema import ApiToken, utcnow
from server.services.access import LEVELS

PREFIX = "atd_"
SETTING = "ATENDE_ADMIN_TOKEN"
log = logging.getLogger(__name__)
# The hash each database was last brought to, so looking up a bearer token costs no write.
_ensured: weakref.WeakKeyDictionary[sessionmaker[Session], str] = weakref.WeakKeyDictionary()


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(sessions: sessionmaker[Session], name: str, collection: str | None = None,
           level: str | None = None) -> str:
    """A new token bound to a knowledge base (for /v1) or to a level (for /api), not both; the
    plain token is returned only here."""
    if (collection is None) == (level is None):
        raise ValueError("a token is bound to a knowledge base or to a level, one of them")
    if level is not None and level not in LEVELS:
        raise ValueError(f"level {level!r} is not one of {', '.join(LEVELS)}")
    if name == SETTING:
        raise ValueError(f"{SETTING} is the setting's own token: set the setting instead")
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        with sessions.begin() as s:
            s.add(ApiToken(name=name, token_hash=digest(token), collection=collection or "",
                           level=level))
    except IntegrityError:
        raise ValueError(f"a token named {name!r} already exists") from None
    return token


def verify(sessions: sessionmaker[Session], token: str) -> ApiToken | None:
    """The live token of the OpenAI-compatible endpoint matching this secret, if any."""
    with sessions() as s:
        row = find(s, token)
    return row if row is not None and row.level is None else None


def find(s: Session, token: str) -> ApiToken | None:
    """The live token of either kind matching this secret, if any."""
    row = s.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
    return row if row is not None and row.revoked_at is None else None


def ensure_setting(sessions: sessionmaker[Session], secret: str | None) -> None:
    """Make ATENDE_ADMIN_TOKEN's value the token named after it: made if missing, its hash
    replaced (and revocation undone) when the setting changed. The same value revoked with
    `atende tokens revoke` stays revoked. Unset, nothing changes: another process (the CLI in
    a shell without the setting) must not take the server's token away."""
    if not secret:
        return
    wanted = digest(secret)
    if _ensured.get(sessions) == wanted:
        return
    try:
        with sessions.begin() as s:
            row = s.scalar(select(ApiToken).where(ApiToken.name == SETTING))
            if row is None:
                s.add(ApiToken(name=SETTING, token_hash=wanted, collection="", level="admin"))
            elif row.token_hash != wanted:
                row.token_hash, row.level, row.collection = wanted, "admin", ""
                row.revoked_at = None
    except IntegrityError:  # made meanwhile by another process, or the value of another token
        log.warning("%s could not be stored as a token: it is another token's value, or "
                    "another process stored it first", SETTING)
        return
    _ensured[sessions] = wanted


def revoke(sessions: sessionmaker[Session], name: str) -> bool:
    with sessions.begin() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.name == name))
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = utcnow()
        return True


def listing(sessions: sessionmaker[Session]) -> list[ApiToken]:
    with sessions() as s:
        return list(s.scalars(select(ApiToken).order_by(ApiToken.id)))
