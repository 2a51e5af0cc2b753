"""What routes share: settings, database sessions, the admin check.

Routes take what they need as typed dependencies: ``SessionDep`` (a session for the request),
``SessionsDep`` (the factory, for services that open their own transactions) and
``SettingsDep``. Every process reaches the database through ``server.db.sessions_for``: one
factory per database URL.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Path, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from server.db import sessions_for
from server.settings import Settings, get_settings


class Problem(BaseModel):
    """An error's body: what went wrong, in words (or, for a malformed request, per field)."""

    detail: str | list[dict[str, Any]]


_WHY = {400: "Invalid request", 401: "Missing or wrong token", 403: "Admin API disabled",
        404: "Not found", 409: "Refused: the reason says why", 413: "Body too large",
        422: "Malformed request"}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route answers with."""
    return {c: {"model": Problem, "description": _WHY[c]} for c in codes}


ADMIN_ERRORS = errors(401, 403)
# A row id in a path: what a BIGINT column holds (a larger one is a 422, not a 500).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def settings_dep() -> Settings:
    return get_settings()


def db_sessions() -> sessionmaker[Session]:
    return sessions_for(get_settings().sqlalchemy_url)


def db_session() -> Iterator[Session]:
    with db_sessions()() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(settings_dep)]
SessionsDep = Annotated[sessionmaker[Session], Depends(db_sessions)]
SessionDep = Annotated[Session, Depends(db_session)]


def bearer(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (the scheme in any case, as
    RFC 7235 has it); None for any other shape, a bare token included."""
    scheme, _, token = authorization.strip().partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def require_admin(authorization: str = Header("", description="Bearer ATENDE_ADMIN_TOKEN")) -> None:
    """Admin API access: a bearer token equal to ATENDE_ADMIN_TOKEN."""
    token = get_settings().admin_token
    if not token:
        raise HTTPException(403, "admin API disabled: set ATENDE_ADMIN_TOKEN")
    given = bearer(authorization) or ""
    if not secrets.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise HTTPException(401, "missing or wrong bearer token")


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, read as it streams in and refused (413) as soon as it passes
    ``limit``: a declared Content-Length over it is refused unread, and a chunked or lying
    body is counted as it arrives, so a 200 MB POST costs no more memory than ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and (len(declared) > 15 or int(declared) > limit):
        raise HTTPException(413, f"body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
