"""Evolution API v2 webhooks: who may post them, and what they say.

Every event is one POST (``webhook.controller.ts``)::

    {"event": "messages.upsert", "instance": "sales-01", "data": {...},
     "destination": ..., "date_time": ..., "sender": ..., "server_url": ..., "apikey": ...}

``event`` is the dotted name (``Events`` in ``wa.types.ts``); other transports and older
versions spell it ``MESSAGES_UPSERT``, so both are read. Evolution signs nothing: the webhook
URL we give it carries a per-instance token (``...?token=<webhook_secret>``), and the body must
name our instance.

What the events say (``whatsapp.baileys.service.ts``): ``messages.upsert`` and ``send.message``
carry one message (see ``message.py``); Baileys' upsert ``type`` (notify/append) is NOT
forwarded, both go out alike, so only ``messages.set`` (a history sync: a list) is known to be
backlog. ``messages.update`` is ``{keyId, remoteJid, fromMe, participant, status, messageId}``
where ``messageId`` is Evolution's database id and ``status`` one of ERROR, PENDING,
SERVER_ACK, DELIVERY_ACK, READ, PLAYED, DELETED (``renderStatus.ts``). ``messages.delete`` is
the revoked message's key (or, after our own delete call, the stored message with its key).
``messages.edited`` is the protocolMessage of an edit or a revoke. ``connection.update`` is
``{instance, state: open|connecting|close|refused, statusReason}``; ``qrcode.updated`` is
``{qrcode: {instance, pairingCode, code, base64}}`` or, past the QR limit, ``{message,
statusCode}``.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway_bridge.events import (
    AuthError,
    ConnectionUpdate,
    Event,
    Ignored,
    InstanceConfig,
    PayloadError,
    StatusUpdate,
    load_json,
)
from gateway_bridge.evolution.message import message_of, revoked

TOKEN_PARAM = "token"
STATUSES = {"SERVER_ACK": "sent", "DELIVERY_ACK": "delivered", "READ": "read",
            "PLAYED": "played", "ERROR": "failed", "DELETED": "deleted"}
# Baileys' numeric statuses, as older versions forwarded them (proto.WebMessageInfo.Status)
NUMERIC = {0: "ERROR", 1: "PENDING", 2: "SERVER_ACK", 3: "DELIVERY_ACK", 4: "READ", 5: "PLAYED"}
STATES = {"open": "connected", "connecting": "pairing", "close": "disconnected",
          "refused": "disconnected"}
# Events that need no action here: the server keeps no chat list, contacts or groups.
QUIET = frozenset({
    "application.startup", "instance.create", "instance.delete", "status.instance",
    "send.message.update", "contacts.set", "contacts.upsert",
    "contacts.update", "presence.update", "chats.set", "chats.update", "chats.upsert",
    "chats.delete", "groups.upsert", "groups.update", "group.participants.update", "call",
    "typebot.start", "typebot.change.status", "labels.edit", "labels.association",
    "creds.update", "messaging.history.set"})
GONE = frozenset({"logout.instance", "remove.instance"})  # the number is unlinked


def instance_name(instance: InstanceConfig) -> str:
    """The instance's name at Evolution (the ``instance`` option, else our name)."""
    return instance.option("instance", instance.name) or instance.name


def verify(body: bytes, headers: Mapping[str, str], query: Mapping[str, str],
           instance: InstanceConfig) -> None:
    """The webhook URL's ``token`` is the instance's secret (constant time), or AuthError.

    With Evolution's "webhook by events" on, it appends ``/messages-upsert`` to the URL we gave
    it, after our query string: a token ending so is read without that suffix.
    """
    secret = instance.webhook_secret.encode()
    given = str(query.get(TOKEN_PARAM) or "")
    suffix = re.fullmatch(r"(.*)/[a-z]+(?:-[a-z]+)*", given)
    candidates = [given] + ([suffix.group(1)] if suffix else [])
    ok = False
    for candidate in candidates:  # every candidate compared: no early exit to time
        ok |= hmac.compare_digest(candidate.encode(), secret)
    if not secret or not ok:
        raise AuthError(f"missing or wrong '{TOKEN_PARAM}' in the webhook URL")


def event_name(raw: Any) -> str:
    """``MESSAGES_UPSERT``, ``messages.upsert``, ``messages-upsert`` → ``messages.upsert``."""
    return re.sub(r"[_\-.]", ".", raw.strip().lower()) if isinstance(raw, str) else ""


def parse(body: bytes, instance: InstanceConfig | None = None) -> list[Event]:
    """The events of one webhook body. AuthError when it names another instance."""
    data = load_json(body)
    if instance is not None:
        named = data.get("instance")
        if not isinstance(named, str) or not named:
            raise PayloadError("body has no 'instance'")
        if not hmac.compare_digest(named.encode(), instance_name(instance).encode()):
            raise AuthError("webhook names another instance")
    name = event_name(data.get("event"))
    payload = data.get("data")
    if name in ("messages.upsert", "send.message"):
        mine = True if name == "send.message" else None
        return [message_of(m, from_me=mine) for m in _items(payload, name)]
    if name == "messages.set":
        return [_history(m) for m in _items(payload, name, list_key="messages")]
    if name == "messages.update":
        return [_status(u) for u in _items(payload, name)]
    if name == "messages.delete":
        return [_deleted(d) for d in _items(payload, name)]
    if name == "messages.edited":
        return [_edited(payload)]
    if name == "connection.update":
        return [_connection(payload)]
    if name == "qrcode.updated":
        return [_qrcode(payload)]
    if name in GONE:
        return [ConnectionUpdate(state="disconnected", timestamp=_now(), detail=name)]
    if name in QUIET:
        return [Ignored(f"{name}: nothing to do")]
    return [Ignored(f"unknown Evolution event {str(data.get('event'))[:60]!r}", unknown=True)]


def _now() -> datetime:
    return datetime.now(UTC)


def _items(payload: Any, name: str, list_key: str | None = None) -> list[dict[str, Any]]:
    """The objects of an event's ``data``: one object, or a list of them."""
    if list_key and isinstance(payload, dict) and isinstance(payload.get(list_key), list):
        payload = payload[list_key]
    items = payload if isinstance(payload, list) else [payload]
    if not all(isinstance(i, dict) for i in items):
        raise PayloadError(f"{name}: 'data' must be an object or a list of objects")
    return items


def _history(item: dict[str, Any]) -> Event:
    """A history message: stored, never answered. One unreadable item does not lose the rest."""
    try:
        return message_of(item, backlog=True)
    except PayloadError as exc:
        return Ignored(f"messages.set item unreadable: {exc}", unknown=True)


def _status(update: dict[str, Any]) -> Event:
    key = update["key"] if isinstance(update.get("key"), dict) else {}
    msg_id = update.get("keyId") or key.get("id")  # not messageId: Evolution's database id
    if not isinstance(msg_id, str) or not msg_id:
        raise PayloadError("messages.update has no keyId")
    if update.get("remoteJid") == "status@broadcast":
        return Ignored("status broadcast update")
    word = update.get("status")
    word = NUMERIC.get(word, word) if isinstance(word, int) else word
    if word == "PENDING":
        return Ignored("message pending on the phone")
    if not isinstance(word, str) or word not in STATUSES:
        return Ignored(f"unknown message status {str(word)[:40]!r}", unknown=True)
    failed = word == "ERROR"
    return StatusUpdate(provider_message_id=msg_id, status=STATUSES[word], timestamp=_now(),
                        error=(str(update.get("error") or word) if failed else None),
                        error_code=(str(update["errorCode"]) if failed and
                                    update.get("errorCode") is not None else None))


def _deleted(data: dict[str, Any]) -> Event:
    key = data["key"] if isinstance(data.get("key"), dict) else data  # stored message, or key
    msg_id = key.get("id")
    if not isinstance(msg_id, str) or not msg_id:
        raise PayloadError("messages.delete has no key id")
    return StatusUpdate(provider_message_id=msg_id, status="deleted", timestamp=_now())


def _edited(payload: Any) -> Event:
    """An edit needs nothing; a revoke (the same protocolMessage) deletes the message."""
    if not isinstance(payload, dict):
        raise PayloadError("messages.edited: 'data' must be an object")
    target = revoked(payload)
    if target:
        return StatusUpdate(provider_message_id=target, status="deleted", timestamp=_now())
    return Ignored("message edited")


def _connection(payload: Any) -> Event:
    if not isinstance(payload, dict):
        raise PayloadError("connection.update: 'data' must be an object")
    word = payload.get("state")
    if not isinstance(word, str) or word not in STATES:
        return Ignored(f"unknown connection state {str(word)[:40]!r}", unknown=True)
    reason = payload.get("statusReason")
    detail = str(word) if reason in (None, 200) else f"{word} {reason}"
    return ConnectionUpdate(state=STATES[word], timestamp=_now(), detail=detail)


def _qrcode(payload: Any) -> Event:
    if not isinstance(payload, dict):
        raise PayloadError("qrcode.updated: 'data' must be an object")
    code = payload.get("qrcode")
    if isinstance(code, dict):
        qr = code.get("base64") or code.get("code")
        return ConnectionUpdate(state="pairing", timestamp=_now(),
                                qr=qr if isinstance(qr, str) else None, detail="qrcode.updated")
    if payload.get("message"):  # "QR code limit reached, please login again"
        return ConnectionUpdate(state="disconnected", timestamp=_now(),
                                detail=str(payload["message"])[:200])
    return Ignored("qrcode.updated without a code", unknown=True)
