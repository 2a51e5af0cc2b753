"""API for what travels through the gateways: pairing and connection checks, what a number
recovered or could not read, dead letters and their replay (admin), and messages sent by hand
(agents and up, in the conversations they may see)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import select

from gateway_bridge import NotOffered
from gateway_bridge.events import storable
from server import runtime
from server.deps import (
    ADMIN_ERRORS,
    ConversationId,
    Principal,
    RowId,
    SessionDep,
    SessionsDep,
    SettingsDep,
    errors,
    require,
    require_admin,
)
from server.schema import Instance, UnsupportedPayload
from server.services import connection, instances, media, outbox, sending
from server.services.scrub import scrubbed
from server.tasks import deliver

router = APIRouter(prefix="/api", tags=["admin"], responses=ADMIN_ERRORS)
ADMIN = [Depends(require_admin)]
AGENT = [Depends(require("agent"))]


class Health(BaseModel):
    state: str
    detail: str | None
    alert: str | None
    reconciled: int = Field(description="Messages found by reconciliation: no webhook brought them")
    unsupported: int = Field(description="Webhook bodies of a shape we could not read, kept")
    dead_letters: int = Field(description="Sends that failed for good (replay them)")
    sent_today: int
    daily_cap: int


class DeadLetter(BaseModel):
    id: int
    message_id: int
    conversation_id: int
    instance: str
    type: str
    text: str
    attempts: int
    error: str | None
    failed_at: datetime


class Queued(BaseModel):
    outbox_id: int


class Template(BaseModel):
    name: str = Field(min_length=1, max_length=512)
    language: str = Field("pt_BR", min_length=2, max_length=16)
    components: list[dict[str, Any]] | None = None


@router.get("/instances/{name}/health", summary="A number's connection and what went wrong",
            responses=errors(404), dependencies=ADMIN)
def health(name: str, s: SessionDep) -> Health:
    inst = _instance(s, name)
    return Health(state=inst.connection_state, detail=inst.connection_detail,
                  alert=connection.alert(inst), sent_today=inst.sent_today,
                  daily_cap=inst.daily_cap, **connection.counts(s, inst.id))


@router.post("/instances/{name}/check", summary="Ask the gateway now whether the number is linked",
             responses=errors(404), dependencies=ADMIN)
async def check(name: str, s: SessionDep, sessions: SessionsDep) -> Health:
    inst = _instance(s, name)
    await run_in_threadpool(connection.check, runtime.current().http, sessions, inst.id)
    s.expire_all()
    return health(name, s)


@router.get("/instances/{name}/qr", summary="The QR code to pair the number again",
            responses=errors(404, 409), dependencies=ADMIN)
async def qr(name: str, sessions: SessionsDep) -> dict[str, str | None]:
    try:
        code = await run_in_threadpool(connection.qr, runtime.current().http, sessions, name)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except NotOffered as exc:
        raise HTTPException(409, str(exc)) from None
    return {"qr": code}


@router.get("/instances/{name}/unsupported", summary="Webhook bodies we could not read, kept",
            dependencies=ADMIN)
def unsupported(name: str, s: SessionDep,
                limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    inst = _instance(s, name)
    rows = s.scalars(select(UnsupportedPayload).where(UnsupportedPayload.instance_id == inst.id)
                     .order_by(UnsupportedPayload.id.desc()).limit(limit))
    # scrubbed again on the way out: a body kept before scrubbing began still held its keys
    return [{"id": r.id, "reason": r.reason, "received_at": r.received_at,
             "body": scrubbed(r.body)} for r in rows]


@router.get("/outbox/failed", summary="Dead letters: sends that failed for good",
            dependencies=ADMIN)
def dead_letters(s: SessionDep, instance: str | None = None) -> list[DeadLetter]:
    return [DeadLetter.model_validate(d) for d in outbox.dead_letters(s, instance)]


@router.post("/outbox/{outbox_id}/replay", summary="Send a dead letter again", status_code=202,
             responses=errors(404), dependencies=ADMIN)
def replay(outbox_id: RowId, sessions: SessionsDep) -> Queued:
    try:
        outbox.replay(sessions, outbox_id)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    deliver(outbox_id)
    return Queued(outbox_id=outbox_id)


@router.post("/conversations/{conversation_id}/messages", status_code=202,
             summary="Send a message as an agent (text, or a file with a caption)",
             responses=errors(400, 404, 413))
async def send_message(who: Annotated[Principal, Depends(require("agent"))],
                       conversation_id: ConversationId, sessions: SessionsDep,
                       settings: SettingsDep, text: str = Form("", max_length=20_000),
                       file: UploadFile | None = None) -> Queued:
    upload = None
    if file is not None:
        data = await file.read(settings.media_max_bytes + 1)
        if len(data) > settings.media_max_bytes:
            raise HTTPException(413, f"file over the limit of {settings.media_max_bytes} bytes")
        upload = (data, file.content_type or "application/octet-stream", file.filename)
    text = storable(text)  # a NUL is nothing to send (and no text PostgreSQL keeps)
    if not text.strip() and upload is None:
        raise HTTPException(400, "send a text, a file, or both")
    try:
        box = await run_in_threadpool(sending.agent_message, sessions, conversation_id,
                                      text=text, file=upload, data_dir=settings.data_dir,
                                      max_bytes=settings.media_max_bytes, user_id=who.user_id)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except media.Refused as exc:
        raise HTTPException(400, str(exc)) from None
    deliver(box)
    return Queued(outbox_id=box)


@router.post("/conversations/{conversation_id}/template", status_code=202,
             summary="Send an approved Cloud API template (outside the 24-hour window too)",
             responses=errors(404), dependencies=AGENT)
def send_template(conversation_id: ConversationId, body: Template, sessions: SessionsDep) -> Queued:
    try:
        box = sending.template_message(sessions, conversation_id,
                                       body.model_dump(exclude_none=True))
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    deliver(box)
    return Queued(outbox_id=box)


def _instance(s: SessionDep, name: str) -> Instance:
    try:
        return instances.get(s, name)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
