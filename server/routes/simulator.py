"""The built-in WhatsApp simulator: a web chat that plays the customer's phone and the gateway.

It speaks to the server as a real gateway would: every customer message is a signed webhook
over HTTP, replies arrive through its send API, and delivery statuses go back as webhooks.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path

import httpx
from fastapi import APIRouter, BackgroundTasks, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway_bridge import simulator as wire
from server.deps import db_sessions, errors, settings_dep
from server.schema import Instance, SimulatorMessage

router = APIRouter(tags=["simulator"])
templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")


class PhoneMessage(BaseModel):
    phone: str = Field(pattern=r"^\+?[0-9]{8,15}$", description="The customer's number, digits")
    name: str | None = Field(None, max_length=100)
    text: str = Field(max_length=4096)


class SendRequest(BaseModel):
    to: str
    text: str
    ref: str | None = Field(None, max_length=64,
                            description="Idempotency key: a repeated send shows once")


def _instance(name: str) -> Instance:
    with db_sessions()() as s:
        inst = s.scalar(select(Instance).where(Instance.name == name,
                                               Instance.provider == "simulator"))
    if inst is None:
        raise HTTPException(404, f"no simulator instance {name!r}")
    return inst


@router.get("/simulator", response_class=HTMLResponse, include_in_schema=False)
def page(request: Request) -> HTMLResponse:
    with db_sessions()() as s:
        names = list(s.scalars(select(Instance.name).where(Instance.provider == "simulator")))
    return templates.TemplateResponse(request, "simulator.html", {"instances": names})


async def _post_webhook(inst: Instance, payload: dict) -> int:
    body = json.dumps(payload, ensure_ascii=False).encode()
    url = f"{settings_dep().public_url.rstrip('/')}/webhooks/simulator/{inst.name}"
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.post(url, content=body, headers={
            "Content-Type": "application/json",
            wire.SIGNATURE_HEADER: wire.sign(body, inst.webhook_secret)})
    return resp.status_code


@router.post("/simulator/api/{instance}/messages", summary="A customer writes (simulator)",
             responses=errors(404))
async def customer_writes(instance: str, msg: PhoneMessage) -> dict[str, object]:
    """Deliver a customer's message to the server as a signed webhook."""
    inst = _instance(instance)
    phone = msg.phone.lstrip("+")
    mid = f"sim-{secrets.token_hex(8)}"
    with db_sessions().begin() as s:
        s.add(SimulatorMessage(instance=inst.name, phone=phone, direction="in",
                               provider_message_id=mid, text=msg.text))
    status = await _post_webhook(inst, {"event": "message", "id": mid, "from": phone,
                                        "name": msg.name, "text": msg.text,
                                        "timestamp": int(time.time())})
    return {"id": mid, "webhook_status": status}


@router.get("/simulator/api/{instance}/messages", summary="The phone's chat (simulator)",
            responses=errors(404))
def phone_chat(instance: str, phone: str,
               after: int = Query(0, ge=0, le=2**63 - 1)) -> list[dict[str, object]]:
    _instance(instance)
    with db_sessions()() as s:
        rows = s.scalars(select(SimulatorMessage).where(
            SimulatorMessage.instance == instance, SimulatorMessage.phone == phone.lstrip("+"),
            SimulatorMessage.id > after).order_by(SimulatorMessage.id))
        return [{"seq": r.id, "id": r.provider_message_id, "direction": r.direction,
                 "text": r.text, "at": r.created_at.isoformat()} for r in rows]


async def _report_delivered(inst: Instance, mid: str) -> None:
    await asyncio.sleep(0.5)  # like a phone: the receipt comes a moment after the send
    await _post_webhook(inst, {"event": "status", "id": mid, "status": "delivered",
                               "timestamp": int(time.time())})


@router.post("/simulator/api/{instance}/send", summary="Gateway send API (simulator)",
             responses=errors(400, 401, 404))
def gateway_send(instance: str, req: SendRequest, background: BackgroundTasks,
                 key: str = Header("", alias=wire.KEY_HEADER)) -> dict[str, str]:
    """What our adapter calls to send; the message shows on the phone, then reports delivery."""
    inst = _instance(instance)
    if not secrets.compare_digest(key.encode(), (inst.api_key or "").encode()):
        raise HTTPException(401, f"missing or wrong {wire.KEY_HEADER}")
    mid = f"sim-{secrets.token_hex(8)}"
    try:
        with db_sessions().begin() as s:
            s.add(SimulatorMessage(instance=inst.name, phone=req.to, direction="out",
                                   provider_message_id=mid, text=req.text, ref=req.ref))
    except IntegrityError:  # the same ref again: a retry of a send that went through
        with db_sessions()() as s:
            first = s.scalar(select(SimulatorMessage.provider_message_id).where(
                SimulatorMessage.instance == inst.name, SimulatorMessage.ref == req.ref))
        if first is None:
            raise
        return {"id": first}
    background.add_task(_report_delivered, inst, mid)
    return {"id": mid}
