"""What routes share: settings, database sessions, the admin check."""

from __future__ import annotations

import secrets

from fastapi import Header, HTTPException
from sqlalchemy.orm import Session, sessionmaker

from server.db import sessions_for
from server.settings import Settings, get_settings


def settings_dep() -> Settings:
    return get_settings()


def db_sessions() -> sessionmaker[Session]:
    return sessions_for(get_settings().sqlalchemy_url)


def require_admin(authorization: str = Header("", description="Bearer ATENDE_ADMIN_TOKEN")) -> None:
    """Admin API access: a bearer token equal to ATENDE_ADMIN_TOKEN."""
    token = get_settings().admin_token
    if not token:
        raise HTTPException(403, "admin API disabled: set ATENDE_ADMIN_TOKEN")
    given = authorization.removeprefix("Bearer ").strip()
    if not secrets.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise HTTPException(401, "missing or wrong bearer token")
