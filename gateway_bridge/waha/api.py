"""Calls to WAHA's HTTP API, each authenticated with ``X-Api-Key: <api_key>``.

Endpoints (WAHA's ``src/api/*.controller.ts`` and its documentation):

- ``POST /api/sendText`` ``{"session", "chatId", "text"}``; ``POST /api/sendImage`` and
  ``POST /api/sendFile`` ``{"session", "chatId", "file": {"mimetype", "filename", "data"},
  "caption"}`` (``data`` base64); ``POST /api/sendVoice`` ``{"session", "chatId",
  "file": {"mimetype", "data"}, "convert"}``. The answer is the sent message; its ``id`` is a
  string (NOWEB, GOWS: ``"true_5511...@c.us_3EB0..."``) or WhatsApp Web's object whose
  ``_serialized`` is that string (WEBJS).
- ``GET /api/sessions/{session}`` → ``{"name", "status", "me", "config", "engine"}``.
- ``GET /api/{session}/auth/qr?format=raw`` → ``{"value": "<QR text>"}``; 422 when the session
  is not waiting for a scan.
- ``GET /api/{session}/chats/{chatId}/messages?limit=N&downloadMedia=false`` → a list of
  messages in the webhook's ``payload`` shape, newest first.
- Files: the ``media.url`` of a message, on WAHA's own ``/api/files/...``, also behind the key.

A ``chatId`` is ``<digits>@c.us`` (a phone), ``<digits>@lid`` or ``<id>@g.us``; ``send`` takes
plain digits too. Errors come from ``http.call``: they name WAHA's answer, never our key.
"""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from gateway_bridge.events import (
    ConnectionUpdate,
    InboundMessage,
    InstanceConfig,
    Media,
    PayloadError,
    SendError,
)
from gateway_bridge.http import Outgoing, call, inline, raw
from gateway_bridge.waha.content import obj
from gateway_bridge.waha.ids import cus, key_id
from gateway_bridge.waha.message import message
from gateway_bridge.waha.parse import SESSION_STATES

GATEWAY = "WAHA"
KEY_HEADER = "X-Api-Key"
ENDPOINTS = {"text": "sendText", "image": "sendImage", "document": "sendFile", "audio": "sendVoice"}
DEFAULT_PORTS = {"http": 80, "https": 443}
PHONE_CHARS = frozenset("0123456789+-(). ")


def _base(instance: InstanceConfig) -> str:
    if not instance.api_url:
        raise SendError("instance has no api_url for WAHA", retryable=False)
    return instance.api_url.rstrip("/")


def _session(instance: InstanceConfig) -> str:
    return instance.option("session", "default") or "default"


def _headers(instance: InstanceConfig) -> dict[str, str]:
    # A WAHA started without WAHA_API_KEY takes any call; then there is no key to send.
    headers = {"Accept": "application/json"}
    if instance.api_key:
        headers[KEY_HEADER] = instance.api_key
    return headers


def chat_id(to: str) -> str:
    """``to`` as a WAHA chatId: a JID as given, a phone number as ``<digits>@c.us``."""
    to = to.strip()
    if "@" in to:  # WAHA asks for @c.us where Baileys would say @s.whatsapp.net
        return cus(to)
    digits = "".join(ch for ch in to if ch.isdigit())
    if set(to) <= PHONE_CHARS and 8 <= len(digits) <= 15:
        return f"{digits}@c.us"
    raise SendError(f"{to[:40]!r} is neither a WhatsApp chat id nor a phone number",
                    retryable=False)


def sent_id(answer: Any) -> str | None:
    """The sent message's WAHA id from a send's answer, whatever the engine."""
    for part in (obj(answer), obj(obj(answer).get("_data"))):
        mid = part.get("id")
        if isinstance(mid, dict):  # WEBJS: {"fromMe", "remote", "id", "_serialized"}
            mid = mid.get("_serialized")
        if isinstance(mid, str) and mid:
            return mid
        if isinstance(part.get("key"), dict):  # Baileys' raw WebMessageInfo
            return key_id(part["key"])
    return None


def send(client: httpx.Client, instance: InstanceConfig, to: str, out: Outgoing, *,
         ref: str | None = None) -> str:
    """Send one message through the instance's WAHA session; returns WAHA's message id.

    An audio goes as a voice note (``sendVoice``), converted by WAHA unless it already is the
    OGG/Opus WhatsApp plays. ``ref`` is ignored: WAHA takes no idempotency key, so a retry
    after a lost answer may show twice on the phone (the echo in ``message.any`` lets the
    server see it)."""
    if out.kind not in ENDPOINTS:
        raise SendError(f"WAHA cannot send a {out.kind} (Cloud API templates only)",
                        retryable=False)
    body: dict[str, Any] = {"session": _session(instance), "chatId": chat_id(to)}
    if out.kind == "text":
        body["text"] = out.text
    else:
        file: dict[str, Any] = {"mimetype": out.mime, "data": out.b64()}
        if out.kind == "audio":
            body["convert"] = not (out.mime or "").lower().startswith(("audio/ogg", "audio/opus"))
        else:
            extension = mimetypes.guess_extension((out.mime or "").split(";")[0].strip())
            file["filename"] = out.filename or f"{out.kind}{extension or ''}"
            if out.text:
                body["caption"] = out.text
        body["file"] = file
    url = f"{_base(instance)}/api/{ENDPOINTS[out.kind]}"
    answer = call(client, GATEWAY, "POST", url, json=body, headers=_headers(instance))
    mid = sent_id(answer)
    if mid is None:
        raise SendError("WAHA answered without a message id")
    return mid


def connection(client: httpx.Client, instance: InstanceConfig) -> ConnectionUpdate:
    """Ask WAHA for the session's status; its QR code too while it waits for a scan.

    Never raises for WAHA being down or refusing us: that is "disconnected", with why."""
    now = datetime.now(UTC)
    try:
        url = f"{_base(instance)}/api/sessions/{quote(_session(instance), safe='')}"
        answer = call(client, GATEWAY, "GET", url, headers=_headers(instance))
    except SendError as exc:
        detail = {"401": "credentials refused",
                  "404": f"WAHA has no session {_session(instance)!r}"}.get(exc.code or "")
        return ConnectionUpdate(state="disconnected", timestamp=now, detail=detail or str(exc))
    status = obj(answer).get("status")
    if not isinstance(status, str) or not status:
        return ConnectionUpdate(state="disconnected", timestamp=now,
                                detail="WAHA answered without a session status")
    state = SESSION_STATES.get(status, "disconnected")
    code = None
    if status == "SCAN_QR_CODE":
        try:
            code = qr(client, instance)
        except SendError:
            code = None  # the state is still right; the QR can be asked for again
    return ConnectionUpdate(state=state, timestamp=now, qr=code, detail=status)


def qr(client: httpx.Client, instance: InstanceConfig) -> str | None:
    """The QR code's text for pairing (``format=raw``), or a data: URL when WAHA gives the
    image; None when the session is not waiting for a scan (WAHA answers 422)."""
    url = f"{_base(instance)}/api/{quote(_session(instance), safe='')}/auth/qr"
    try:
        answer = call(client, GATEWAY, "GET", url, params={"format": "raw"},
                      headers=_headers(instance))
    except SendError as exc:
        if exc.code == "422":
            return None
        raise
    value = obj(answer).get("value")
    if isinstance(value, str) and value:
        return value
    mime, data = obj(answer).get("mimetype"), obj(answer).get("data")
    if isinstance(mime, str) and isinstance(data, str) and data:
        return f"data:{mime};base64,{data}"
    raise SendError("WAHA answered without a QR code")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    scheme = url.scheme.lower()
    return scheme, url.host.lower(), url.port or DEFAULT_PORTS.get(scheme)


def download(client: httpx.Client, instance: InstanceConfig, media: Media, *,
             max_bytes: int) -> tuple[bytes, str | None]:
    """A message's file: its bytes and MIME type. Over ``max_bytes`` → ValueError.

    WAHA serves files on its own API, behind the key; the key goes only to the instance's own
    WAHA (same scheme, host and port as ``api_url``): a ``media.url`` elsewhere (a forged
    webhook, a WAHA_BASE_URL other than ``api_url``) is refused, not fetched."""
    if media.data:
        return inline(media.data, max_bytes=max_bytes, gateway=GATEWAY), media.mime
    where = media.url or media.ref
    if not where:
        raise SendError("WAHA did not keep this message's file (no media.url)", retryable=False)
    base = _base(instance)
    try:
        url = httpx.URL(base + where if where.startswith("/") else where)
        ours = _origin(url) == _origin(httpx.URL(base))
    except (httpx.InvalidURL, TypeError, ValueError):
        ours = False
    if not ours:
        raise SendError("the file is not on this instance's WAHA; its API key is not sent there",
                        retryable=False)
    content, ctype = raw(client, GATEWAY, str(url), max_bytes=max_bytes,
                         headers=_headers(instance))
    return content, media.mime or ctype


def recent(client: httpx.Client, instance: InstanceConfig, chat: str, *,
           limit: int) -> list[InboundMessage]:
    """The chat's latest ``limit`` messages as WAHA keeps them (newest first), read by the
    same code as the webhooks; files not downloaded (``downloadMedia=false``). An item that is
    no customer message (status feed) or unreadable is left out, not fatal to the rest."""
    session = quote(_session(instance), safe="")
    url = f"{_base(instance)}/api/{session}/chats/{quote(chat_id(chat), safe='@')}/messages"
    answer = call(client, GATEWAY, "GET", url, headers=_headers(instance),
                  params={"limit": limit, "downloadMedia": "false"})
    if not isinstance(answer, list):
        raise SendError("WAHA answered the chat history with no list")
    found: list[InboundMessage] = []
    for item in answer:
        try:
            parsed = message(item) if isinstance(item, dict) else None
        except PayloadError:
            continue
        if isinstance(parsed, InboundMessage):
            found.append(parsed)
    return found
