"""``/webhooks/{provider}/{instance}``: store what a gateway sends, then acknowledge.

Evolution signs nothing, so its webhook URL carries the instance's secret token (``?token=``);
with Evolution's "webhook by events" it appends the event to the path, which is accepted and
ignored. The Cloud API first checks the URL with a GET (``hub.challenge``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from gateway_bridge import AuthError, PayloadError, adapter_for, cloud
from server.deps import SessionsDep, SettingsDep, errors, read_body
from server.schema import Instance
from server.services import inbound, instances
from server.settings import Settings
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


def _instance(sessions: SessionsDep, provider: str, name: str) -> Instance:
    with sessions() as s:
        try:
            inst = instances.get(s, name)
        except LookupError:
            inst = None
    if inst is None or inst.provider != provider:
        raise HTTPException(404, f"unknown instance {name!r} for provider {provider!r}")
    return inst


@router.post("/webhooks/{provider}/{instance}", summary="Receive a gateway webhook",
             responses=errors(400, 401, 404, 413))
@router.post("/webhooks/{provider}/{instance}/{event}", include_in_schema=False)
async def receive(provider: str, instance: str, request: Request, sessions: SessionsDep,
                  settings: SettingsDep) -> dict[str, int]:
    """Check, normalize and store the webhook's events once; the answer comes later."""
    body = await read_body(request, body_limit(provider, settings))
    # All the blocking work in one thread: the event loop stays free to take the next webhook.
    return await run_in_threadpool(accept, sessions, settings, provider, instance, body,
                                   request.headers, request.query_params)


def accept(sessions: SessionsDep, settings: Settings, provider: str, name: str, body: bytes,
           headers: Mapping[str, str], query: Mapping[str, str]) -> dict[str, int]:
    """The webhook's work, off the event loop: find the instance, check, store, schedule."""
    inst = _instance(sessions, provider, name)
    cfg = instances.config(inst)
    adapter = adapter_for(provider)
    try:
        adapter.verify(body, headers, query, cfg)
        events = adapter.parse(body, cfg)
    except AuthError as exc:
        log.warning("webhook for %s refused: %s", name, exc)
        raise HTTPException(401, str(exc)) from None
    except PayloadError as exc:
        raise HTTPException(400, f"malformed webhook: {exc}") from None
    out = inbound.handle(sessions, inst, events, rules(settings), body=body)
    after_inbound(settings, out.turns, out.fetch)
    return {"stored": out.stored, "duplicates": out.duplicates, "ignored": out.ignored,
            "statuses": out.statuses}


@router.get("/webhooks/cloud/{instance}", summary="The Cloud API's webhook check",
            response_class=PlainTextResponse, responses=errors(401, 404))
def handshake(instance: str, request: Request, sessions: SessionsDep) -> str:
    """Meta checks the webhook URL with ``hub.mode``, ``hub.verify_token`` and
    ``hub.challenge``: the challenge comes back when the verify token is the instance's."""
    inst = _instance(sessions, "cloud", instance)
    try:
        return cloud.handshake(request.query_params, instances.config(inst))
    except AuthError as exc:
        log.warning("Cloud webhook check for %s refused: %s", instance, exc)
        raise HTTPException(401, str(exc)) from None
