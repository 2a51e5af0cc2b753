"""``POST /webhooks/{provider}/{instance}``: store what a gateway sends, then acknowledge."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from gateway_bridge import AuthError, PayloadError, adapter_for
from server.deps import SessionsDep, SettingsDep, errors, read_body
from server.schema import Instance
from server.services import inbound
from server.services.outbox import instance_config
from server.tasks import run_turn

router = APIRouter(tags=["webhooks"])
log = logging.getLogger(__name__)
MAX_BODY = 1_000_000


@router.post("/webhooks/{provider}/{instance}", summary="Receive a gateway webhook",
             responses=errors(400, 401, 404, 413))
async def receive(provider: str, instance: str, request: Request, sessions: SessionsDep,
                  settings: SettingsDep) -> dict[str, int]:
    """Check, normalize and store the webhook's events once; the answer comes later."""
    with sessions() as s:
        inst = s.scalar(select(Instance).where(Instance.name == instance))
    if inst is None or inst.provider != provider:
        raise HTTPException(404, f"unknown instance {instance!r} for provider {provider!r}")
    body = await read_body(request, MAX_BODY)
    try:
        events = adapter_for(provider).parse_webhook(body, request.headers, instance_config(inst))
    except AuthError as exc:
        log.warning("webhook for %s refused: %s", instance, exc)
        raise HTTPException(401, str(exc)) from None
    except PayloadError as exc:
        raise HTTPException(400, f"malformed webhook: {exc}") from None
    out = await run_in_threadpool(inbound.handle, sessions, inst, events,
                                  stale_after=timedelta(seconds=settings.stale_after_seconds))
    for conv_id in out.turns:
        run_turn.schedule(args=(conv_id,), delay=settings.turn_debounce_seconds)
    return {"stored": out.stored, "duplicates": out.duplicates, "ignored": out.ignored,
            "statuses": out.statuses}
