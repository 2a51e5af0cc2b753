"""Calls to the WhatsApp Cloud API (Meta's Graph API) for one business phone number.

Every call is ``{api_url or https://graph.facebook.com}/{api_version, default v21.0}/...`` with
``Authorization: Bearer <access token>`` (the instance's ``api_key``); the number is the
``phone_number_id`` option. Sending is ``POST /{phone_number_id}/messages``; a file is first
uploaded (``POST /{phone_number_id}/media``, multipart) and sent by its media id. A received
file is ``GET /{media id}`` (a short-lived URL) and then a GET of that URL with the same token.
Meta has no QR code (the number is registered once, in Meta's dashboard) and no message
history to read back: ``qr`` and ``recent`` raise NotOffered.

Graph errors come as ``{"error": {"message", "type", "code", "error_data": {"details"},
"fbtrace_id"}}``, mostly with HTTP 400 whatever the cause: the Graph ``code``, not the HTTP
status, decides here whether trying again may help.
"""

from __future__ import annotations

import mimetypes
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from gateway_bridge.events import (
    ConnectionUpdate,
    InboundMessage,
    InstanceConfig,
    Media,
    NotOffered,
    SendError,
)
from gateway_bridge.http import Outgoing, call, inline, raw

GATEWAY = "Cloud API"
GRAPH = "https://graph.facebook.com"
DEFAULT_VERSION = "v21.0"
# Where Meta serves media from: the token goes to these hosts (and to a configured api_url).
MEDIA_HOSTS = frozenset({"graph.facebook.com", "lookaside.fbsbx.com"})

REENGAGEMENT = "131047"
REENGAGEMENT_WORDS = (
    "Cloud API refused the message (131047): more than 24 hours have passed since the "
    "customer's last message, and outside that window only an approved template can be sent")
# Throughput and rate limits: waiting helps. 4 is the app's call limit, 80007 the WABA's,
# 130429 the number's throughput, 131056 too many messages to the same customer.
RATE_LIMITS = frozenset({"4", "80007", "130429", "131056"})
# Meta's "try again later" codes (service unavailable, something went wrong).
TRANSIENT = frozenset({"1", "2", "131000", "131016", "133004"})
# Numbers whose phone status means they can still send; others (PENDING, OFFLINE, BANNED,
# DELETED, DISCONNECTED, MIGRATED, UNVERIFIED...) cannot until someone acts in Meta's dashboard.
SENDING_STATES = frozenset({"CONNECTED", "FLAGGED", "RESTRICTED", "RATE_LIMITED"})
PHONE_FIELDS = "display_phone_number,verified_name,quality_rating,name_status,status"
BSUID = re.compile(r"[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}")  # business-scoped user id: US.1349...
PHONE_CHARS = re.compile(r"[+\-\s().]")


def _base(instance: InstanceConfig) -> str:
    version = instance.option("api_version", DEFAULT_VERSION) or DEFAULT_VERSION
    return f"{(instance.api_url or GRAPH).rstrip('/')}/{version.strip('/')}"


def _number(instance: InstanceConfig) -> str:
    pid = instance.option("phone_number_id")
    if not pid or not pid.isdigit():
        raise SendError("instance has no valid phone_number_id option", retryable=False)
    return pid


def _auth(instance: InstanceConfig) -> dict[str, str]:
    if not instance.api_key:
        raise SendError("instance has no Cloud API access token (api_key)", retryable=False)
    return {"Authorization": f"Bearer {instance.api_key}"}


def _call(client: httpx.Client, method: str, url: str, **kwargs: Any) -> Any:
    """``http.call``, with the Graph error code deciding retries (a 400 may be a rate limit)."""
    try:
        return call(client, GATEWAY, method, url, **kwargs)
    except SendError as exc:
        if exc.code == REENGAGEMENT:
            raise SendError(REENGAGEMENT_WORDS, retryable=False, code=exc.code) from None
        if exc.code in RATE_LIMITS or exc.code in TRANSIENT:
            raise SendError(str(exc), retryable=True, retry_after=exc.retry_after,
                            code=exc.code) from None
        raise


def _recipient(to: str) -> dict[str, str]:
    """How the messages endpoint names a chat: a phone (``to``), a username's BSUID
    (``recipient``) or a group id (``to`` with ``recipient_type: group``)."""
    to = to.strip()
    digits = PHONE_CHARS.sub("", to)
    if digits.isdigit():
        return {"recipient_type": "individual", "to": digits}
    if BSUID.fullmatch(to):
        return {"recipient_type": "individual", "recipient": to}
    if to and "/" not in to:
        return {"recipient_type": "group", "to": to}
    raise SendError(f"not a Cloud API recipient: {to[:40]!r}", retryable=False)


def _template(template: dict[str, Any]) -> dict[str, Any]:
    language = template.get("language")
    if isinstance(language, str):
        language = {"code": language}  # "pt_BR" is what people write; Meta wants an object
    if not isinstance(language, dict) or not language.get("code"):
        raise SendError("a template needs its language code", retryable=False)
    body: dict[str, Any] = {"name": template["name"], "language": language}
    if template.get("components"):
        body["components"] = template["components"]
    return body


def upload(client: httpx.Client, instance: InstanceConfig, out: Outgoing) -> str:
    """Upload a file to Meta; its media id (valid 30 days) to send it by."""
    ext = mimetypes.guess_extension((out.mime or "").split(";")[0].strip()) or ""
    files = {"file": (out.filename or f"{out.kind}{ext}", out.data or b"", out.mime)}
    answer = _call(client, "POST", f"{_base(instance)}/{_number(instance)}/media",
                   headers=_auth(instance), files=files,
                   data={"messaging_product": "whatsapp", "type": out.mime or ""})
    media_id = answer.get("id") if isinstance(answer, dict) else None
    if not media_id:
        raise SendError(f"{GATEWAY} answered the upload without a media id")
    return str(media_id)


def send(client: httpx.Client, instance: InstanceConfig, to: str, out: Outgoing, *,
         ref: str | None = None) -> str:
    """Send one message; returns its ``wamid``. The Cloud API takes no idempotency key; ``ref``
    goes as ``biz_opaque_callback_data``, which Meta gives back on the message's statuses, so a
    send whose answer was lost is known to have gone when its first status comes (a retry
    before that may still deliver twice). Audio goes as a voice
    note (``voice: true``) when it is OGG/Opus, the only format Meta plays as one; audio takes
    no caption, so ``out.text`` is not sent with it."""
    headers = _auth(instance)
    url = f"{_base(instance)}/{_number(instance)}/messages"
    body: dict[str, Any] = {"messaging_product": "whatsapp", **_recipient(to), "type": out.kind,
                            **({"biz_opaque_callback_data": ref} if ref else {})}
    if out.kind == "text":
        body["text"] = {"preview_url": False, "body": out.text}
    elif out.kind == "template":
        body["template"] = _template(out.template or {})
    else:
        part: dict[str, Any] = {"id": upload(client, instance, out)}
        if out.kind in ("image", "document") and out.text:
            part["caption"] = out.text
        if out.kind == "document" and out.filename:
            part["filename"] = out.filename
        if out.kind == "audio" and (out.mime or "").startswith("audio/ogg"):
            part["voice"] = True
        body[out.kind] = part
    answer = _call(client, "POST", url, json=body, headers=headers)
    try:
        return str(answer["messages"][0]["id"])
    except (KeyError, IndexError, TypeError):
        raise SendError(f"{GATEWAY} answered without a message id") from None


def connection(client: httpx.Client, instance: InstanceConfig) -> ConnectionUpdate:
    """Ask Graph about the phone number: a token Meta refuses (code 190, HTTP 401) is
    "credentials refused"; Meta unreachable or failing is disconnected with why, not raised."""
    now = datetime.now(UTC)
    try:
        info = _call(client, "GET", f"{_base(instance)}/{_number(instance)}",
                     params={"fields": PHONE_FIELDS}, headers=_auth(instance))
    except SendError as exc:
        refused = exc.code in ("190", "102", "401")  # expired or revoked token, bad session
        return ConnectionUpdate(state="disconnected", timestamp=now,
                                detail="credentials refused" if refused else str(exc))
    info = info if isinstance(info, dict) else {}
    status = str(info.get("status") or "").upper()
    quality = info.get("quality_rating")
    detail = ", ".join(x for x in (status, f"quality {quality}" if quality else "") if x)
    state = "connected" if not status or status in SENDING_STATES else "disconnected"
    return ConnectionUpdate(state=state, timestamp=now, detail=detail or None)


def qr(client: httpx.Client, instance: InstanceConfig) -> str | None:
    raise NotOffered("the Cloud API registers the number in Meta's dashboard; there is no QR")


def recent(client: httpx.Client, instance: InstanceConfig, chat: str, *,
           limit: int) -> list[InboundMessage]:
    raise NotOffered("the Cloud API keeps no message history to read back")


def _may_get_token(url: str, instance: InstanceConfig) -> bool:
    """Only Meta's media hosts (HTTPS) and the configured api_url's host get the token."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "https" and (parts.hostname or "").lower() in MEDIA_HOSTS:
            return True
        ours = urlsplit(instance.api_url or GRAPH)
        return (parts.scheme, parts.hostname, parts.port) == (
            ours.scheme, ours.hostname, ours.port)
    except ValueError:  # a port that is no number: not a URL we trust
        return False


def download(client: httpx.Client, instance: InstanceConfig, media: Media, *,
             max_bytes: int) -> tuple[bytes, str | None]:
    """A received file's bytes and MIME type: its media id gives a fresh URL and the size
    (refused at once when over ``max_bytes``); the URL is fetched with the token, streamed and
    cut off past ``max_bytes`` (ValueError)."""
    if media.data is not None:  # not what Meta sends, but a Media may carry its bytes
        return inline(media.data, max_bytes=max_bytes, gateway=GATEWAY), media.mime
    if media.size is not None and media.size > max_bytes:
        raise ValueError(f"file is larger than the limit of {max_bytes} bytes")
    headers = _auth(instance)
    mime = media.mime
    if media.ref:
        info = _call(client, "GET", f"{_base(instance)}/{quote(media.ref, safe='')}",
                     params={"phone_number_id": _number(instance)}, headers=headers)
        info = info if isinstance(info, dict) else {}
        size = info.get("file_size")
        if isinstance(size, int | str) and str(size).isdigit() and int(size) > max_bytes:
            raise ValueError(f"file of {size} bytes is larger than the limit of {max_bytes}")
        url, mime = info.get("url"), info.get("mime_type") or mime
    else:
        url = media.url
    if not isinstance(url, str) or not url:
        raise SendError(f"{GATEWAY} gave no URL for the file", retryable=False)
    if not _may_get_token(url, instance):
        raise SendError("file URL is not on a Meta media host; the token is not sent there",
                        retryable=False)
    # httpx drops Authorization on a redirect to another host, so following one is safe.
    data, ctype = raw(client, GATEWAY, url, max_bytes=max_bytes, headers=headers,
                      follow_redirects=True)
    return data, mime or ctype
