"""What routes share: settings, database sessions, who is asking and what they may reach.

Routes take what they need as typed dependencies: ``SessionDep`` (a session for the request),
``SessionsDep`` (the factory, for services that open their own transactions) and
``SettingsDep``. Every process reaches the database through ``server.db.sessions_for``: one
factory per database URL.

Access is checked here, on the server, for every route that is not public: ``CurrentPrincipal``
is the caller (a logged-in user by the session cookie, or an API token by ``Authorization:
Bearer``), ``require(level)`` the least level a route wants (agent < manager < admin; 401 for no
one, 403 for too low), and ``ConversationId``, ``MessageId`` and ``ContactId`` path ids the
caller may see (``server.services.access``; 404 otherwise, as for an unknown id). Pages use
``require_page(level)``, which sends a browser with no session to the login page.
``tests/test_route_matrix.py`` fails for a route that does not say its level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from server.db import sessions_for
from server.services import access, api_tokens, auth
from server.services.access import Principal
from server.settings import Settings, get_settings

__all__ = ["Principal"]  # re-exported: routes take it from here


class Problem(BaseModel):
    """An error's body: what went wrong, in words (or, for a malformed request, per field)."""

    detail: str | list[dict[str, Any]]


_WHY = {400: "Invalid request", 401: "Not logged in, or a missing or wrong token",
        403: "Below the level the route wants, or a CSRF token missing",
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


Level = Literal["agent", "manager", "admin"]
_bearer = HTTPBearer(auto_error=False, description="An API token bound to a level (`atende "
                     "tokens create NAME --level LEVEL`), or ATENDE_ADMIN_TOKEN")
_cookie = APIKeyCookie(name=auth.COOKIE, auto_error=False,
                       description="The web app's session, from POST /auth/login")


def current_principal(
        sessions: SessionsDep, settings: SettingsDep,
        token: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        cookie: Annotated[str | None, Depends(_cookie)]) -> Principal:
    """The caller, or 401: a bearer token if one is sent, else the session cookie."""
    if token is not None and settings.admin_token:
        api_tokens.ensure_setting(sessions, settings.admin_token.get_secret_value())
    who = auth.principal(sessions, token.credentials.strip() if token else None, cookie)
    if who is None:
        raise HTTPException(401, "log in, or send a valid bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    return who


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
SessionCookie = Annotated[str | None, Depends(_cookie)]  # the session token, if one is sent


@cache
def require(level: Level) -> Callable[[Principal], Principal]:
    """The dependency a route of this least level takes (one per level, so FastAPI runs it
    once per request however many times it is named)."""

    def check(who: CurrentPrincipal) -> Principal:
        if who.level is None:
            raise HTTPException(403, "this token is for the OpenAI-compatible endpoint (/v1) "
                                "only: make one with --level for the API")
        if not who.at_least(level):
            raise HTTPException(403, f"needs level {level} or above")
        return who

    check.__name__ = f"require_{level}"
    return check


require_admin = require("admin")


class _LoginFirst(HTTPException):
    """A page asked for by a browser with no session: 303 to the login page, back after."""

    def __init__(self, request: Request) -> None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        super().__init__(303, "log in first",
                         headers={"Location": f"/login?next={quote(back, safe='')}"})


@cache
def require_page(level: Level) -> Callable[..., Principal]:
    """``require(level)`` for an HTML page: no session sends the browser to /login."""

    def check(request: Request, sessions: SessionsDep,
              cookie: Annotated[str | None, Depends(_cookie)]) -> Principal:
        who = auth.principal(sessions, None, cookie)
        if who is None:
            raise _LoginFirst(request)
        if not who.at_least(level):
            raise HTTPException(403, f"needs level {level} or above")
        return who

    check.__name__ = f"require_page_{level}"
    return check


def _visible_conversation(conversation_id: RowId, who: CurrentPrincipal,
                          sessions: SessionsDep) -> int:
    with sessions() as s:
        if not access.sees_conversation(s, who, conversation_id):
            raise HTTPException(404, f"conversation {conversation_id} not found")
    return conversation_id


def _visible_message(message_id: RowId, who: CurrentPrincipal, sessions: SessionsDep) -> int:
    with sessions() as s:
        if not access.sees_message(s, who, message_id):
            raise HTTPException(404, f"no message {message_id}")
    return message_id


def _visible_contact(contact_id: RowId, who: CurrentPrincipal, sessions: SessionsDep) -> int:
    with sessions() as s:
        if not access.sees_contact(s, who, contact_id):
            raise HTTPException(404, f"no contact {contact_id}")
    return contact_id


# Path ids the caller may see; another team's answers 404, in the words an unknown id gets.
ConversationId = Annotated[int, Depends(_visible_conversation)]
MessageId = Annotated[int, Depends(_visible_message)]
ContactId = Annotated[int, Depends(_visible_contact)]


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

# A page's caller: no session redirects to /login; a lower level gets the 403 page. Name it
# before any scoped id (ConversationId...) so a browser with no session is redirected first.
PageAgent = Annotated[Principal, Depends(require_page("agent"))]
PageManager = Annotated[Principal, Depends(require_page("manager"))]
PageAdmin = Annotated[Principal, Depends(require_page("admin"))]
