"""The built-in simulator's side of the wire: the phones' chats, standing in for WhatsApp.

A customer's message is kept on the phone and posted to the server as a signed webhook, as a
gateway would; a send from the server is kept once per idempotency key and answered with its
id, and its delivery is reported back a moment later.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway_bridge import simulator as wire
from server.schema import Instance, SimulatorMessage


def find(s: Session, name: str) -> Instance | None:
    return s.scalar(select(Instance).where(Instance.name == name,
                                           Instance.provider == "simulator"))


def names(s: Session) -> list[str]:
    return list(s.scalars(select(Instance.name).where(Instance.provider == "simulator")))


async def post_webhook(public_url: str, inst: Instance, payload: dict[str, Any]) -> int:
    """Post one event to the server as the gateway does: signed with the instance's secret."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    url = f"{public_url.rstrip('/')}/webhooks/simulator/{inst.name}"
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.post(url, content=body, headers={
            "Content-Type": "application/json",
            wire.SIGNATURE_HEADER: wire.sign(body, inst.webhook_secret)})
    return resp.status_code


async def customer_writes(sessions: sessionmaker[Session], public_url: str, inst: Instance,
                          phone: str, name: str | None, text: str) -> tuple[str, int]:
    """The phone sends a message: kept on the phone, then delivered as a webhook. Returns its
    id and the webhook's HTTP status."""
    mid = f"sim-{secrets.token_hex(8)}"
    with sessions.begin() as s:
        s.add(SimulatorMessage(instance=inst.name, phone=phone, direction="in",
                               provider_message_id=mid, text=text))
    status = await post_webhook(public_url, inst, {"event": "message", "id": mid, "from": phone,
                                                   "name": name, "text": text,
                                                   "timestamp": int(time.time())})
    return mid, status


def chat(s: Session, inst: Instance, phone: str, after: int) -> list[dict[str, object]]:
    rows = s.scalars(select(SimulatorMessage).where(
        SimulatorMessage.instance == inst.name, SimulatorMessage.phone == phone.lstrip("+"),
        SimulatorMessage.id > after).order_by(SimulatorMessage.id))
    return [{"seq": r.id, "id": r.provider_message_id, "direction": r.direction,
             "text": r.text, "at": r.created_at.isoformat()} for r in rows]


def receive_send(sessions: sessionmaker[Session], inst: Instance, to: str, text: str,
                 ref: str | None) -> tuple[str, bool]:
    """A send from the server reaches the phone once per ``ref``. Returns the message's id and
    whether it is new (a repeated ref gets the first send's id back)."""
    mid = f"sim-{secrets.token_hex(8)}"
    try:
        with sessions.begin() as s:
            s.add(SimulatorMessage(instance=inst.name, phone=to, direction="out",
                                   provider_message_id=mid, text=text, ref=ref))
    except IntegrityError:  # the same ref again: a retry of a send that went through
        with sessions() as s:
            first = s.scalar(select(SimulatorMessage.provider_message_id).where(
                SimulatorMessage.instance == inst.name, SimulatorMessage.ref == ref))
        if first is None:
            raise
        return first, False
    return mid, True


async def report_delivered(public_url: str, inst: Instance, mid: str) -> None:
    await asyncio.sleep(0.5)  # like a phone: the receipt comes a moment after the send
    await post_webhook(public_url, inst, {"event": "status", "id": mid, "status": "delivered",
                                          "timestamp": int(time.time())})
