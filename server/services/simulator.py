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

import flows
from gateway_bridge import simulator as wire
from server.schema import Conversation, Instance, SimulatorMessage, utcnow
from server.services import chat_sessions, contact_data, contacts, flow_store, handling
from server.settings import Settings


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
                          phone: str, name: str | None, text: str,
                          voice: tuple[str, str] | None = None) -> tuple[str, int]:
    """The phone sends a message (``voice``: a voice note, as base64 and its MIME type): kept
    on the phone, then delivered as a webhook. Returns its id and the webhook's HTTP status."""
    mid = f"sim-{secrets.token_hex(8)}"
    with sessions.begin() as s:
        s.add(SimulatorMessage(instance=inst.name, phone=phone, direction="in",
                               provider_message_id=mid, text=text or ("[áudio]" if voice else "")))
    payload: dict[str, Any] = {"event": "message", "id": mid, "from": phone, "name": name,
                               "text": text, "timestamp": int(time.time())}
    if voice is not None:
        payload.update(type="voice", media={"data": voice[0], "mime": voice[1]})
    status = await post_webhook(public_url, inst, payload)
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


def session_of(s: Session, inst: Instance, phone: str) -> dict[str, object]:
    """What the simulator shows beside a test contact's chat: who answers, and the open
    session's flow, stage and variables."""
    conv = s.scalar(select(Conversation).where(Conversation.instance_id == inst.id,
                                               Conversation.address == phone.lstrip("+")))
    if conv is None:
        return {"mode": None, "status": None, "session": None}
    sess = chat_sessions.open_session(s, conv)
    return {"mode": conv.mode, "status": conv.status,
            "session": None if sess is None else chat_sessions.describe(sess)}


def start_flow(sessions: sessionmaker[Session], settings: Settings, inst: Instance, phone: str,
               name: str | None, flow_key: str | None) -> None:
    """Run a flow against a test contact: its open session ends, and a new one waits to start
    ``flow_key`` (none: the number's default) with the contact's next message."""
    phone = phone.lstrip("+")
    contact_id = contacts.resolve(sessions, phone=phone, lid=None, name=name, address=phone)
    conv_id = contacts.conversation_for(sessions, contact_id, inst.id, phone)
    with sessions.begin() as s:
        key = flow_key or inst.default_flow
        if key is None:
            raise LookupError("this number has no default flow: choose one")
        stored = flow_store.get(s, key)
        if stored is None or not stored.enabled:
            raise LookupError(f"no enabled flow {key!r}")
        conv = s.get_one(Conversation, conv_id)
        handling.close(s, settings, conv.id)
        sess, _ = chat_sessions.current(s, conv, inst, settings, utcnow())
        conv.mode = "flow"
        sess.flow_key, sess.state = key, flows.state_to_dict(flows.new_state(
            key, tags=frozenset(contact_data.tags_of(s, contact_id)),
            fields=contact_data.fields_of(s, contact_id)))
