"""The built-in WhatsApp simulator: a web chat that plays the customer's phone and the gateway.

It speaks to the server as a real gateway would: every customer message is a signed webhook
over HTTP, replies arrive through its send API, and delivery statuses go back as webhooks.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from gateway_bridge import simulator as wire
from server.deps import SessionDep, SessionsDep, SettingsDep, errors
from server.schema import Instance
from server.services import flow_store, simulator

router = APIRouter(tags=["simulator"])
templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")


class PhoneMessage(BaseModel):
    phone: str = Field(pattern=r"^\+?[0-9]{8,15}$", description="The customer's number, digits")
    name: str | None = Field(None, max_length=100)
    text: str = Field("", max_length=4096)
    voice: str | None = Field(None, max_length=700_000,
                              description="A voice note, base64 (about 500 kB at most)")
    voice_mime: str = Field("audio/ogg", pattern=r"^audio/[a-z0-9.+-]{1,40}$")


class SendRequest(BaseModel):
    to: str
    text: str
    ref: str | None = Field(None, max_length=64,
                            description="Idempotency key: a repeated send shows once")


def _instance(instance: str, s: SessionDep) -> Instance:
    inst = simulator.find(s, instance)
    if inst is None:
        raise HTTPException(404, f"no simulator instance {instance!r}")
    return inst


SimInstance = Annotated[Instance, Depends(_instance)]


@router.get("/simulator", response_class=HTMLResponse, include_in_schema=False)
def page(request: Request, s: SessionDep) -> HTMLResponse:
    return templates.TemplateResponse(request, "simulator.html",
                                      {"instances": simulator.names(s),
                                       "flows": [f.key for f in flow_store.listing(s)
                                                 if f.enabled]})


@router.post("/simulator/api/{instance}/messages", summary="A customer writes (simulator)",
             responses=errors(404))
async def customer_writes(inst: SimInstance, msg: PhoneMessage, sessions: SessionsDep,
                          settings: SettingsDep) -> dict[str, object]:
    """Deliver a customer's message to the server as a signed webhook."""
    mid, status = await simulator.customer_writes(sessions, settings.public_url, inst,
                                                  msg.phone.lstrip("+"), msg.name, msg.text,
                                                  (msg.voice, msg.voice_mime) if msg.voice
                                                  else None)
    return {"id": mid, "webhook_status": status}


@router.get("/simulator/api/{instance}/messages", summary="The phone's chat (simulator)",
            responses=errors(404))
def phone_chat(inst: SimInstance, phone: str, s: SessionDep,
               after: int = Query(0, ge=0, le=2**63 - 1)) -> list[dict[str, object]]:
    return simulator.chat(s, inst, phone, after)


class TryFlow(BaseModel):
    phone: str = Field(pattern=r"^\+?[0-9]{8,15}$")
    name: str | None = Field(None, max_length=100)
    flow: str | None = Field(None, max_length=64, description="A flow's key; none: the default")


@router.get("/simulator/api/{instance}/session", summary="A test contact's session (simulator)",
            responses=errors(404))
def session(inst: SimInstance, s: SessionDep,
            phone: str = Query(pattern=r"^\+?[0-9]{8,15}$")) -> dict[str, object]:
    return simulator.session_of(s, inst, phone)


@router.post("/simulator/api/{instance}/session", status_code=204, responses=errors(404),
             summary="Run a flow against a test contact: its next message starts it")
def try_flow(inst: SimInstance, body: TryFlow, sessions: SessionsDep,
             settings: SettingsDep) -> None:
    try:
        simulator.start_flow(sessions, settings, inst, body.phone, body.name, body.flow)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None


@router.post("/simulator/api/{instance}/send", summary="Gateway send API (simulator)",
             responses=errors(400, 401, 404))
def gateway_send(inst: SimInstance, req: SendRequest, background: BackgroundTasks,
                 sessions: SessionsDep, settings: SettingsDep,
                 key: str = Header("", alias=wire.KEY_HEADER)) -> dict[str, str]:
    """What our adapter calls to send; the message shows on the phone, then reports delivery."""
    if not secrets.compare_digest(key.encode(), (inst.api_key or "").encode()):
        raise HTTPException(401, f"missing or wrong {wire.KEY_HEADER}")
    mid, new = simulator.receive_send(sessions, inst, req.to, req.text, req.ref)
    if new:
        background.add_task(simulator.report_delivered, settings.public_url, inst, mid)
    return {"id": mid}
