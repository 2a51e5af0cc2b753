"""Pages: the inbox, where agents work. ``/inbox`` lists the conversations one may see, with
filters; ``/inbox/{id}`` is the chat (the list beside it on a wide screen); a message's journey
is one click from it. Both stay live through ``/inbox/events`` (server-sent events): the page
re-fetches the part that changed. Actions are in ``inbox_actions``, canned responses in
``inbox_canned``; every part is drawn by ``inbox_view``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session, sessionmaker
from sse_starlette import EventSourceResponse

from server.deps import ConversationId, MessageId, PageAgent, SessionCookie, SessionsDep
from server.routes.pages import inbox_actions, inbox_canned, inbox_schedules
from server.routes.pages.inbox_view import chat_context, draw, labels, list_context
from server.schema import Message
from server.services import access, auth, inbox, inbox_live, journey, people
from server.services.access import Principal

router = APIRouter()
# Before /inbox/{conversation_id}: "canned" is no conversation id.
router.include_router(inbox_canned.router)
router.include_router(inbox_actions.router)
router.include_router(inbox_schedules.router)
TICK = 1.0  # seconds between looks at the database
LIFETIME = 300.0  # a stream ends after this; the browser reconnects where it left off
RECHECK = 5  # looks between two checks of who is watching (a query each: not every tick)


@router.get("/inbox", response_class=HTMLResponse)
def inbox_page(who: PageAgent, request: Request, sessions: SessionsDep) -> HTMLResponse:
    with sessions() as s:
        context = list_context(s, who, request)
    return draw(request, "list.html", {**context, "since": _now()}, who, block="list")


@router.get("/inbox/events")
async def events(who: PageAgent, request: Request, sessions: SessionsDep,
                 since: Annotated[float, Query(ge=0, le=2**40)],
                 conversation: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
                 cookie: SessionCookie = None,
                 last_event_id: Annotated[str | None, Header()] = None) -> EventSourceResponse:
    """The viewer's changes as they happen: ``inbox`` (the list's rows changed) and, for the
    open ``conversation``, ``chat``. ``since`` is when the page was drawn (epoch seconds);
    each event's id is the time it was found, so a reconnect goes on from there."""
    if conversation is not None:
        with sessions() as s:
            if not access.sees_conversation(s, who, conversation):
                raise HTTPException(404, f"conversation {conversation} not found")
    resumed = _epoch(last_event_id)
    start = datetime.fromtimestamp(max(since, resumed or 0.0), UTC)
    return EventSourceResponse(_stream(sessions, inbox_live.Watch(who, start), conversation,
                                       cookie), ping=15)


async def _stream(sessions: sessionmaker[Session], watch: inbox_live.Watch,
                  conversation: int | None, cookie: str | None) -> AsyncIterator[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    end = loop.time() + LIFETIME
    looks = 0
    while loop.time() < end:
        looks += 1
        changed = await run_in_threadpool(_look, sessions, watch, cookie,
                                          looks % RECHECK == 1)
        if changed is None:  # logged out, deactivated: the stream ends with the session
            return
        stamp = f"{_now():.3f}"
        if changed:
            yield {"event": "inbox", "id": stamp, "data": ",".join(map(str, sorted(changed)))}
        if conversation in changed:
            yield {"event": "chat", "id": stamp, "data": str(conversation)}
        await asyncio.sleep(TICK)


def _look(sessions: sessionmaker[Session], watch: inbox_live.Watch, cookie: str | None,
          again: bool) -> set[int] | None:
    """What changed for the viewer; ``again``: as they are now (None: their session is over),
    so a person deactivated, logged out or moved to another team sees the change within
    ``RECHECK`` ticks, not when the stream would have ended (``LIFETIME``)."""
    if again:
        who = auth.principal(sessions, None, cookie)
        if who is None:
            return None
        watch.who = who
    with sessions() as s:
        return watch.look(s)


def _now() -> float:
    return datetime.now(UTC).timestamp()


def _epoch(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


@router.get("/inbox/messages/{message_id}", response_class=HTMLResponse)
def message_journey(who: PageAgent, message_id: MessageId, request: Request,
                    sessions: SessionsDep) -> HTMLResponse:
    """A message's journey, step by step: what happened to it, and when."""
    with sessions() as s:
        msg = s.get(Message, message_id)
        if msg is None:
            raise HTTPException(404, f"no message {message_id}")
        steps = journey.of(s, message_id)
        context = {"message": msg, "steps": steps, **labels()}
        return draw(request, "journey.html", context, who, block="journey")


@router.get("/inbox/{conversation_id}", response_class=HTMLResponse)
def chat_page(who: PageAgent, conversation_id: ConversationId, request: Request,
              sessions: SessionsDep, part: str = "") -> HTMLResponse:
    """The chat; ``part`` (chat_head, thread, list) is one piece of it, for a live refresh."""
    with sessions.begin() as s:
        context = chat_context(s, who, conversation_id) if part != "list" else {}
        if part in ("", "list"):
            context |= list_context(s, who, request, current=conversation_id)
        context |= _choices(s, who)
        return draw(request, "chat.html", {**context, "since": _now()}, who,
                    block=part if part in ("chat_head", "thread", "list") else None)


def _choices(s: Session, who: Principal) -> dict[str, Any]:
    """Whom the chat may be assigned to and which teams it may go to."""
    return {"agents": inbox.choices(s, who).agents,
            "teams": [(t.id, t.name) for t in people.list_teams(s)]}
