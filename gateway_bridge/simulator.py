"""The built-in WhatsApp simulator's wire format: a webhook per event, HMAC-signed.

Inbound webhook body (``X-Simulator-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``)::

    {"event": "message", "id": "sim-...", "from": "5511987654321", "name": "Maria",
     "text": "oi", "timestamp": 1764140000}
    {"event": "status", "id": "sim-...", "status": "delivered", "timestamp": 1764140001}

Send: ``POST {api_url}/simulator/api/{instance}/send`` with ``{"to": ..., "text": ...,
"ref": ...}`` and header ``X-Simulator-Key``; the answer is ``{"id": "sim-..."}``. ``ref`` is the
sender's idempotency key: a send repeated with the same ref (after a crash cut off the answer)
gets the first one's id and shows once on the phone.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from gateway_bridge.events import (
    AuthError,
    ConnectionUpdate,
    Event,
    InboundMessage,
    InstanceConfig,
    Media,
    NotOffered,
    PayloadError,
    SendError,
    StatusUpdate,
    load_json,
)
from gateway_bridge.http import Outgoing, call

SIGNATURE_HEADER = "X-Simulator-Signature"
KEY_HEADER = "X-Simulator-Key"
STATUSES = {"sent", "delivered", "read", "failed"}


def sign(body: bytes, secret: str) -> str:
    """The signature header value for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, headers: Mapping[str, str], query: Mapping[str, str],
           instance: InstanceConfig) -> None:
    """The body is signed with the instance's secret, or AuthError."""
    given = headers.get(SIGNATURE_HEADER.lower()) or headers.get(SIGNATURE_HEADER) or ""
    # Bytes, not str: compare_digest raises on a non-ASCII str, which a forged header may hold.
    if not hmac.compare_digest(given.encode("utf-8", "replace"),
                               sign(body, instance.webhook_secret).encode()):
        raise AuthError(f"missing or wrong {SIGNATURE_HEADER} header")


def parse(body: bytes, instance: InstanceConfig | None = None) -> list[Event]:
    """Turn the body into one normalized event."""
    data = load_json(body)
    kind = data.get("event")
    if kind == "message":
        return [_message(data)]
    if kind == "status":
        return [_status(data)]
    raise PayloadError(f"field 'event' must be 'message' or 'status', got {kind!r}")


def _field(data: dict[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        raise PayloadError(f"field {name!r} is missing or not a non-empty {kind.__name__}")
    return value


def _timestamp(data: dict[str, Any]) -> datetime:
    raw = data.get("timestamp")
    if raw is None:
        return datetime.now(UTC)
    if not isinstance(raw, int | float) or isinstance(raw, bool):
        raise PayloadError("field 'timestamp' must be seconds since the epoch")
    try:
        return datetime.fromtimestamp(raw, UTC)
    except (ValueError, OverflowError, OSError):  # NaN, or milliseconds: year 50000
        raise PayloadError(f"field 'timestamp' {raw} is not seconds since the epoch") from None


def _message(data: dict[str, Any]) -> InboundMessage:
    sender = _field(data, "from", str)
    digits = "".join(ch for ch in sender if ch.isdigit())
    if not 8 <= len(digits) <= 15:
        raise PayloadError("field 'from' must be a phone number with 8 to 15 digits")
    text = data.get("text", "")
    if not isinstance(text, str):
        raise PayloadError("field 'text' must be a string")
    name = data.get("name")
    kind, media = _media(data)
    return InboundMessage(
        provider_message_id=_field(data, "id", str),
        sender=digits,
        phone=digits,
        lid=None,
        sender_name=name if isinstance(name, str) and name.strip() else None,
        text=text,
        timestamp=_timestamp(data),
        type=kind,
        media=media,
    )


def _media(data: dict[str, Any]) -> tuple[str, Media | None]:
    """A file the phone sent, inline: ``"type": "voice"`` with ``"media": {"data": base64,
    "mime": "audio/ogg", "filename": ...}``."""
    kind = data.get("type", "text")
    if kind == "text":
        return "text", None
    if kind not in ("voice", "audio", "image", "document"):
        raise PayloadError("field 'type' must be text, voice, audio, image or document")
    media = data.get("media")
    if not isinstance(media, dict) or not isinstance(media.get("data"), str):
        raise PayloadError(f"a {kind} message needs 'media' with base64 'data'")
    mime, filename = media.get("mime"), media.get("filename")
    return kind, Media(mime=mime if isinstance(mime, str) else None, data=media["data"],
                       filename=filename if isinstance(filename, str) else None)


def _status(data: dict[str, Any]) -> StatusUpdate:
    status = _field(data, "status", str)
    if status not in STATUSES:
        raise PayloadError(f"field 'status' must be one of {sorted(STATUSES)}")
    error = data.get("error")
    return StatusUpdate(
        provider_message_id=_field(data, "id", str),
        status=status,
        timestamp=_timestamp(data),
        error=error if isinstance(error, str) else None,
    )


def send(client: httpx.Client, instance: InstanceConfig, to: str, out: Outgoing, *,
         ref: str | None = None) -> str:
    """Send one message through the simulator; returns its message id. The simulator's phone
    shows text: a file is sent as its caption and a note naming it."""
    if not instance.api_url:
        raise SendError("instance has no api_url", retryable=False)
    text = out.text if out.kind == "text" else (
        f"[{out.kind}: {out.filename or out.mime}] {out.text}".strip())
    url = f"{instance.api_url.rstrip('/')}/simulator/api/{instance.name}/send"
    answer = call(client, "simulator", "POST", url, json={"to": to, "text": text, "ref": ref},
                  headers={KEY_HEADER: instance.api_key or ""})
    try:
        return str(answer["id"])
    except (KeyError, TypeError):
        raise SendError("simulator answered without a message id") from None


def connection(client: httpx.Client, instance: InstanceConfig) -> ConnectionUpdate:
    """The simulator lives in this process: it is linked whenever we are up."""
    return ConnectionUpdate(state="connected", timestamp=datetime.now(UTC), detail="simulator")


def qr(client: httpx.Client, instance: InstanceConfig) -> str | None:
    raise NotOffered("the simulator needs no pairing")


def download(client: httpx.Client, instance: InstanceConfig, media: Media, *,
             max_bytes: int) -> tuple[bytes, str | None]:
    raise NotOffered("the simulator sends no files")


def recent(client: httpx.Client, instance: InstanceConfig, chat: str, *,
           limit: int) -> list[InboundMessage]:
    raise NotOffered("the simulator posts every message; there is nothing to reconcile")
