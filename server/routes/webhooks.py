"""``/webhooks/{provider}/{instance}``: store what a gateway sends, then acknowledge.

Evolution signs nothing, so its webhook URL carries the instance's secret token (``?token=``);
with Evolution's "webhook by events" it appends the event to the path, which is accepted and
ignored. The Cloud API first checks the URL with a GET (``hub.challenge``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from gateway_bridge import AuthError, Event, PayloadError, adapter_for, cloud
from server.db import engine_of, sessions_for
from server.deps import SessionsDep, errors, read_body
from server.services import inbound, instances
from server.settings import Settings, get_settings
from server.tasks import after_inbound, rules

router = APIRouter(tags=["webhooks"])
log = logging.getLogger(__name__)
MAX_BODY = 1_000_000


def body_limit(provider: str, settings: Settings) -> int:
    """The largest webhook read: 1 MB, but Evolution may carry a file inline in base64 (4/3 of
    its size); the others send a link to it."""
    if provider != "evolution":
        return MAX_BODY
    return max(MAX_BODY, settings.media_max_bytes * 4 // 3 + 65_536)


def _number(c: Connection, provider: str, name: str) -> instances.Number:
    with c.begin():
        inst = instances.for_webhook(c, name)
    if inst is None or inst.provider != provider:
        raise HTTPException(404, f"unknown instance {name!r} for provider {provider!r}")
    return inst


# The webhook's blocking work runs on threads of its own, not on Starlette's shared pool: a
# plain executor's hop is cheaper than anyio's (capacity limiter, cancel scopes), and webhooks
# do not queue behind other routes' sync work. SQLite writes one transaction at a time
# (server.db._one_writer), so 2 threads keep it busy (one writing while the other checks and
# parses); more only add GIL switches. PostgreSQL overlaps its round trips over more.
_executors: dict[str, ThreadPoolExecutor] = {}


def _executor(sessions: sessionmaker[Session]) -> ThreadPoolExecutor:
    dialect = engine_of(sessions).dialect.name
    if dialect not in _executors:
        _executors[dialect] = ThreadPoolExecutor(2 if dialect == "sqlite" else 8,
                                                 thread_name_prefix=f"webhooks-{dialect}")
    return _executors[dialect]


@router.post("/webhooks/{provider}/{instance}", summary="Receive a gateway webhook",
             responses=errors(400, 401, 404, 413))
@router.post("/webhooks/{provider}/{instance}/{event}", include_in_schema=False)
async def receive(provider: str, instance: str, request: Request) -> dict[str, int]:
    """Check, normalize and store the webhook's events once; the answer comes later."""
    # No dependencies: FastAPI runs a sync one on the thread pool, a hop per webhook each.
    settings = get_settings()
    body = await read_body(request, body_limit(provider, settings))
    sessions = sessions_for(settings.sqlalchemy_url)
    # The blocking work in one thread: the event loop stays free to take the next webhook.
    return await asyncio.get_running_loop().run_in_executor(
        _executor(sessions), accept, sessions, settings, provider, instance, body,
        request.headers, request.query_params)


def _checked(c: Connection, provider: str, name: str, body: bytes,
             headers: Mapping[str, str], query: Mapping[str, str]
             ) -> tuple[instances.Number, list[Event]]:
    """The instance, the signature checked (401), the events (400 for a malformed body)."""
    inst = _number(c, provider, name)
    cfg = instances.config(inst)
    adapter = adapter_for(provider)
    try:
        adapter.verify(body, headers, query, cfg)
        return inst, adapter.parse(body, cfg)
    except AuthError as exc:
        log.warning("webhook for %s refused: %s", name, exc)
        raise HTTPException(401, str(exc)) from None
    except PayloadError as exc:
        raise HTTPException(400, f"malformed webhook: {exc}") from None


def accept(sessions: sessionmaker[Session], settings: Settings, provider: str, name: str,
           body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
           ) -> dict[str, int]:
    """The webhook's work, off the event loop: find the instance, check, store, schedule.
    One pooled connection serves the instance's lookup and the messages' transactions."""
    with engine_of(sessions).connect() as c:
        inst, events = _checked(c, provider, name, body, headers, query)
        out = inbound.handle(sessions, inst, events, rules(settings), body=body, conn=c)
    after_inbound(settings, out.turns, out.fetch)
    return {"stored": out.stored, "duplicates": out.duplicates, "ignored": out.ignored,
            "statuses": out.statuses}


@router.get("/webhooks/cloud/{instance}", summary="The Cloud API's webhook check",
            response_class=PlainTextResponse, responses=errors(401, 404))
def handshake(instance: str, request: Request, sessions: SessionsDep) -> str:
    """Meta checks the webhook URL with ``hub.mode``, ``hub.verify_token`` and
    ``hub.challenge``: the challenge comes back when the verify token is the instance's."""
    with engine_of(sessions).connect() as c:
        inst = _number(c, "cloud", instance)
    try:
        return cloud.handshake(request.query_params, instances.config(inst))
    except AuthError as exc:
        log.warning("Cloud webhook check for %s refused: %s", instance, exc)
        raise HTTPException(401, str(exc)) from None
