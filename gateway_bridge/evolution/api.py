"""Calls to Evolution API v2: send, connection state, QR, media and history.

Every call carries the ``apikey`` header (``auth.guard.ts``: the global key or the instance's
token; without it a 401). Routes (``src/api/routes``) take the instance name in the path::

    POST /message/sendText/{instance}          {number, text}                      → 201
    POST /message/sendMedia/{instance}         {number, mediatype, mimetype, caption,
                                                media (base64), fileName}          → 201
    POST /message/sendWhatsAppAudio/{instance} {number, audio (base64)}            → 201
    GET  /instance/connectionState/{instance}  → {"instance": {"instanceName", "state"}}
    GET  /instance/connect/{instance}          → {pairingCode, code, base64, count} (or the
                                                 state when already open)
    POST /chat/getBase64FromMediaMessage/{instance} {"message": {"key": {"id"}},
                                                "convertToMp4": false} → {mimetype, base64, ...}
    POST /chat/findMessages/{instance}         {"where": {"key": {"remoteJid"}}, "offset",
                                                "page"} → {"messages": {"records": [...]}}

A send answers with the message as stored (``prepareMessage``): its ``key.id`` is the id that
later statuses name. Errors come as ``{"status", "error", "response": {"message"}}``.
"""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from gateway_bridge.events import (
    ConnectionUpdate,
    InboundMessage,
    InstanceConfig,
    Media,
    PayloadError,
    SendError,
)
from gateway_bridge.evolution.message import message_of
from gateway_bridge.evolution.parse import STATES, instance_name
from gateway_bridge.http import Outgoing, call, inline, raw

GATEWAY = "evolution"
KEY_HEADER = "apikey"


def _base(instance: InstanceConfig) -> str:
    if not instance.api_url:
        raise SendError("instance has no api_url", retryable=False)
    if not instance.api_key:
        raise SendError("instance has no api_key", retryable=False)
    return instance.api_url.rstrip("/")


def _url(instance: InstanceConfig, route: str) -> str:
    return f"{_base(instance)}/{route}/{quote(instance_name(instance), safe='')}"


def _headers(instance: InstanceConfig) -> dict[str, str]:
    return {KEY_HEADER: instance.api_key or ""}


def _message_id(answer: Any) -> str:
    key = answer.get("key") if isinstance(answer, dict) else None
    msg_id = key.get("id") if isinstance(key, dict) else None
    if not isinstance(msg_id, str) or not msg_id:
        raise SendError(f"{GATEWAY} answered without a message id")
    return msg_id


def _filename(out: Outgoing) -> str:
    """Evolution needs a document's name (it takes the MIME from its extension, and fails
    looking for a name in the base64 without one)."""
    if out.filename:
        return out.filename
    ext = mimetypes.guess_extension(out.mime or "") or ""
    return f"{out.kind}{ext}"


def send(client: httpx.Client, instance: InstanceConfig, to: str, out: Outgoing, *,
         ref: str | None = None) -> str:
    """Send one message; returns Evolution's message id (``key.id``).

    ``to`` goes as Evolution's ``number``: digits, or a JID (``@s.whatsapp.net``, ``@lid``,
    ``@g.us``), as ``createJid`` takes them. No ``delay`` (Evolution's typing pause): Atende
    paces its sends itself. ``ref`` is ignored: Evolution takes no idempotency key, so a send
    retried after a lost answer may show twice.
    """
    if out.kind == "template":
        raise SendError("Evolution sends no Cloud API templates", retryable=False)
    body: dict[str, Any]
    if out.kind == "text":
        route, body = "message/sendText", {"number": to, "text": out.text}
    elif out.kind == "audio":  # a voice note: Evolution converts it to Opus and sets ptt
        route, body = "message/sendWhatsAppAudio", {"number": to, "audio": out.b64()}
    else:
        route = "message/sendMedia"
        body = {"number": to, "mediatype": out.kind, "mimetype": out.mime,
                "caption": out.text, "media": out.b64()}
        if out.kind == "document" or out.filename:
            body["fileName"] = _filename(out)
    answer = call(client, GATEWAY, "POST", _url(instance, route), json=body,
                  headers=_headers(instance))
    return _message_id(answer)


def connection(client: httpx.Client, instance: InstanceConfig) -> ConnectionUpdate:
    """Whether the number is linked. Never raises for the gateway's failures: unreachable,
    a 5xx or a refusal is "disconnected" with why in ``detail``. While it waits for a scan,
    the QR comes along when Evolution has one."""
    now = datetime.now(UTC)
    try:
        answer = call(client, GATEWAY, "GET", _url(instance, "instance/connectionState"),
                      headers=_headers(instance))
    except SendError as exc:
        why = "credentials refused" if exc.code == "401" else str(exc)
        return ConnectionUpdate(state="disconnected", timestamp=now, detail=why)
    state = answer.get("instance", {}).get("state") if isinstance(answer, dict) and \
        isinstance(answer.get("instance"), dict) else None
    if state not in STATES:
        return ConnectionUpdate(state="disconnected", timestamp=now,
                                detail=f"unknown state {str(state)[:40]!r}")
    code = None
    if STATES[state] == "pairing":
        try:
            code = qr(client, instance)
        except SendError:
            code = None  # the state is known; the QR will come by webhook
    return ConnectionUpdate(state=STATES[state], timestamp=now, qr=code, detail=state)


def qr(client: httpx.Client, instance: InstanceConfig) -> str | None:
    """The pairing QR as Evolution renders it (a ``data:image/png;base64,...`` URL), else its
    raw text; None when the number is already linked or no code is ready yet. Asking starts a
    connection attempt when the instance is closed (Evolution's ``/instance/connect``)."""
    answer = call(client, GATEWAY, "GET", _url(instance, "instance/connect"),
                  headers=_headers(instance))
    if not isinstance(answer, dict):
        raise SendError(f"{GATEWAY} answered the QR request with no object")
    if answer.get("error"):  # the controller catches and answers 200 {error, message}
        raise SendError(f"{GATEWAY} could not connect: {str(answer.get('message'))[:200]}")
    for field in ("base64", "code"):
        if isinstance(answer.get(field), str) and answer[field]:
            return str(answer[field])
    return None


def _decoded(data: str, max_bytes: int) -> bytes:
    return inline(data, max_bytes=max_bytes, gateway=GATEWAY)


def _same_host(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def download(client: httpx.Client, instance: InstanceConfig, media: Media, *,
             max_bytes: int) -> tuple[bytes, str | None]:
    """An inbound file's bytes and MIME: the webhook's own base64 when it came with it
    (``webhook_base64``), else Evolution decrypts it for us by message id. A URL off the
    gateway's host is never sent our key. Over ``max_bytes``: ValueError."""
    if media.size is not None and media.size > max_bytes:
        raise ValueError(f"file is larger than the limit of {max_bytes} bytes")
    if media.data:
        return _decoded(media.data, max_bytes), media.mime
    if media.ref:
        answer = call(client, GATEWAY, "POST", _url(instance, "chat/getBase64FromMediaMessage"),
                      json={"message": {"key": {"id": media.ref}}, "convertToMp4": False},
                      headers=_headers(instance))
        data = answer.get("base64") if isinstance(answer, dict) else None
        if not isinstance(data, str) or not data:
            raise SendError(f"{GATEWAY} answered without the file")
        mime = answer.get("mimetype")
        return _decoded(data, max_bytes), (mime if isinstance(mime, str) else media.mime)
    if media.url:
        if not _same_host(media.url, _base(instance)):
            raise SendError("file URL is not on the gateway's host: not sending the key there",
                            retryable=False)
        content, ctype = raw(client, GATEWAY, media.url, max_bytes=max_bytes,
                             headers=_headers(instance))
        return content, media.mime or ctype
    raise SendError("media has neither data, a message id nor a URL", retryable=False)


def _chat_jid(chat: str) -> str:
    """Our ``sender`` (digits, or a JID) as the ``remoteJid`` Evolution stores."""
    if "@" in chat:
        return chat
    return "".join(ch for ch in chat if ch.isdigit()) + "@s.whatsapp.net"


def recent(client: httpx.Client, instance: InstanceConfig, chat: str, *,
           limit: int) -> list[InboundMessage]:
    """The chat's latest ``limit`` messages as Evolution stored them, oldest first, read as
    webhooks are. Evolution pages by ``offset`` (its page size) and ``page``, newest first.
    Messages are not marked backlog: the caller knows why it asked."""
    body = {"where": {"key": {"remoteJid": _chat_jid(chat)}}, "offset": max(1, limit), "page": 1}
    answer = call(client, GATEWAY, "POST", _url(instance, "chat/findMessages"), json=body,
                  headers=_headers(instance))
    records: Any = answer
    if isinstance(answer, dict):  # v2: {"messages": {"total", "pages", "records"}}
        part = answer.get("messages")
        records = part.get("records") if isinstance(part, dict) else part
    if not isinstance(records, list):
        raise SendError(f"{GATEWAY} answered findMessages without records")
    found: list[InboundMessage] = []
    for record in records[:max(1, limit)]:
        if not isinstance(record, dict):
            continue
        try:
            event = message_of(record)
        except PayloadError:
            continue  # a stored row we cannot read is no reason to lose the others
        if isinstance(event, InboundMessage):
            found.append(event)
    return sorted(found, key=lambda m: m.timestamp)
