"""``/webhooks/{provider}/{instance}``: store what a gateway sends, then acknowledge.

Evolution signs nothing, so its webhook URL carries the instance's secret token (``?token=``);
with Evolution's "webhook by events" it appends the event to the path, which is accepted and
ignored. The Cloud API first checks the URL with a GET (``hub.challenge``).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import Connection

from gateway_bridge import AuthError, cloud
from server.db import engine_of, sessions_for
from server.deps import SessionsDep, errors, read_body
from server.services import instances, intake
from server.settings import Settings, get_settings

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


@router.post("/webhooks/{provider}/{instance}", summary="Receive a gateway webhook",
             responses=errors(400, 401, 404, 413))
@router.post("/webhooks/{provider}/{instance}/{event}", include_in_schema=False)
async def receive(provider: str, instance: str, request: Request) -> dict[str, int]:
    """Check, normalize and store the webhook's events once; the answer comes later."""
    # No dependencies: FastAPI runs a sync one on the thread pool, a hop per webhook each.
    settings = get_settings()
    body = await read_body(request, body_limit(provider, settings))
    try:
        out = await intake.take(sessions_for(settings.sqlalchemy_url), settings, provider,
                                instance, body, request.headers, request.query_params)
    except intake.Refused as exc:
        raise HTTPException(exc.status, exc.detail) from None
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
