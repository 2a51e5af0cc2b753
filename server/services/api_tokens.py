"""Tokens for the OpenAI-compatible endpoint: shown once, stored as a hash, revocable."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.schema import ApiToken, utcnow

PREFIX = "atd_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(sessions: sessionmaker[Session], name: str, collection: str) -> str:
    """A new token bound to a knowledge base; the plain token is returned only here."""
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        with sessions.begin() as s:
            s.add(ApiToken(name=name, token_hash=_hash(token), collection=collection))
    except IntegrityError:
        raise ValueError(f"a token named {name!r} already exists") from None
    return token


def verify(sessions: sessionmaker[Session], token: str) -> ApiToken | None:
    """The live token matching this secret, if any."""
    with sessions() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(token)))
    return row if row is not None and row.revoked_at is None else None


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
