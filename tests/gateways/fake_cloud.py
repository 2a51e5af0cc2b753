"""A fake WhatsApp Cloud API (Meta's Graph API) on FakeHTTP, speaking its wire format.

Endpoints, under ``/{version}`` (v21.0 unless told): ``POST /{phone_number_id}/messages``,
``POST /{phone_number_id}/media`` (multipart: file, type, messaging_product),
``GET /{phone_number_id}`` (the number's status and quality) and ``GET /{media_id}`` (a media
URL). The media URL is on the fake's own host (``/whatsapp_business/attachments/?mid=...``, as
lookaside.fbsbx.com spells it), so an adapter configured with the fake as ``api_url`` may send
its token there. Every endpoint wants ``Authorization: Bearer <token>`` and answers 401 with a
Graph error (code 190) without it, as Meta does.

Meta gives no message history and no QR code, so there is no chat store for ``recent`` and no
QR state. Also builders of webhook bodies (``message``, ``status``, ``account_update``) and
``headers`` to sign them.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from tests.gateways.fakehttp import FakeHTTP, Reply, Request

TOKEN = "EAAG-test-token-1234"
APP_SECRET = "app-secret-5678"
PHONE_ID = "106540352242922"
DISPLAY = "15550783881"
WABA_ID = "102290129340398"
VERSION = "v21.0"


def graph_error(status: int, code: int, message: str, *, details: str | None = None,
                kind: str = "OAuthException", headers: dict[str, str] | None = None) -> Reply:
    """A Graph API error answer, as Meta shapes it."""
    err: dict[str, Any] = {"message": message, "type": kind, "code": code,
                           "fbtrace_id": "AbCdEfGhIjKl"}
    if details:
        err["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return Reply(status, {"error": err}, headers or {})


def reengagement() -> Reply:
    """Meta's answer to a free-form message outside the 24-hour window."""
    return graph_error(400, 131047, "(#131047) Re-engagement message", details=(
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number."))


@dataclass
class Sent:
    """One message the adapter sent, as the fake understood it, with its exact wire body."""

    to: str
    kind: str
    text: str | None
    caption: str | None
    mime: str | None
    filename: str | None
    data: bytes | None
    body: dict[str, Any]
    headers: dict[str, str]
    id: str


@dataclass
class FakeCloud:
    """The Graph endpoints above; ``phone`` is what ``GET /{phone_number_id}`` answers (None:
    the number does not exist), ``media`` the customers' files by media id (bytes, MIME),
    ``uploads`` what the adapter uploaded, ``outside_window`` the recipients whose 24-hour
    window is closed (a free-form message to them gets 131047)."""

    http: FakeHTTP
    token: str = TOKEN
    phone_number_id: str = PHONE_ID
    version: str = VERSION
    phone: dict[str, Any] | None = field(default_factory=lambda: {
        "verified_name": "Loja Aurora", "display_phone_number": "+1 555-078-3881",
        "quality_rating": "GREEN", "name_status": "APPROVED", "status": "CONNECTED"})
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    uploads: dict[str, tuple[bytes, str, str | None]] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    outside_window: set[str] = field(default_factory=set)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        v, pid = self.version, self.phone_number_id
        self.http.route("POST", f"/{v}/{pid}/messages", self._guard(self._messages))
        self.http.route("POST", f"/{v}/{pid}/media", self._guard(self._upload))
        self.http.route("GET", f"/{v}/{pid}", self._guard(self._phone))
        self.http.route("GET", f"/{v}/(?P<media>[^/]+)", self._guard(self._media_info))
        self.http.route("GET", "/whatsapp_business/attachments/", self._guard(self._file))

    @property
    def api_url(self) -> str:
        return self.http.url

    def add_media(self, media_id: str, data: bytes, mime: str) -> str:
        """A customer's file Meta holds; returns its id."""
        self.media[media_id] = (data, mime)
        return media_id

    def _guard(self, handler: Any) -> Any:
        def checked(req: Request) -> Reply:
            if req.headers.get("authorization") != f"Bearer {self.token}":
                return graph_error(401, 190, "Invalid OAuth access token - Cannot parse "
                                   "access token")
            reply: Reply = handler(req)
            return reply
        return checked

    def _messages(self, req: Request) -> Reply:
        try:
            body = req.json()
        except ValueError:
            return graph_error(400, 100, "(#100) Invalid parameter")
        kind = body.get("type", "text")
        to = body.get("to") or body.get("recipient")
        if body.get("messaging_product") != "whatsapp" or not to:
            return graph_error(400, 100, "(#100) The parameter messaging_product is required.")
        if kind != "template" and to in self.outside_window:
            return reengagement()
        part = body.get(kind)
        if not isinstance(part, dict):
            return graph_error(400, 100, f"(#100) Param {kind} is required")
        data = mime = filename = None
        if kind in ("image", "document", "audio", "video", "sticker"):
            if part.get("id") not in self.uploads:
                return graph_error(400, 131053, "Media upload error",
                                   details="Unknown media id")
            data, mime, filename = self.uploads[part["id"]]
        wamid = f"wamid.fake{next(self.ids)}"
        self.sent.append(Sent(
            to=str(to), kind=kind, text=part.get("body"), caption=part.get("caption"),
            mime=mime, filename=part.get("filename", filename), data=data, body=body,
            headers=dict(req.headers), id=wamid))
        msg: dict[str, Any] = {"id": wamid}
        if kind == "template":
            msg["message_status"] = "accepted"
        return Reply(200, {"messaging_product": "whatsapp",
                           "contacts": [{"input": str(to), "wa_id": str(to)}],
                           "messages": [msg]})

    def _upload(self, req: Request) -> Reply:
        fields = _multipart(req)
        file = fields.get("file")
        if fields.get("messaging_product", (None, b""))[1] != b"whatsapp" or file is None:
            return graph_error(400, 100, "(#100) The parameter messaging_product is required.")
        mime = fields.get("type", (None, b""))[1].decode()
        media_id = str(9_000_000 + next(self.ids))
        self.uploads[media_id] = (file[1], mime, file[0])
        return Reply(200, {"id": media_id})

    def _phone(self, req: Request) -> Reply:
        if self.phone is None:
            return graph_error(400, 100, "Unsupported get request. Object with ID "
                               f"'{self.phone_number_id}' does not exist",
                               kind="GraphMethodException")
        wanted = req.query.get("fields")
        info = {k: v for k, v in self.phone.items() if not wanted or k in wanted.split(",")}
        return Reply(200, {**info, "id": self.phone_number_id})

    def _media_info(self, req: Request) -> Reply:
        media_id = req.match.group("media") if req.match else ""
        if media_id not in self.media:
            return graph_error(400, 100, f"Unsupported get request. Object with ID "
                               f"'{media_id}' does not exist", kind="GraphMethodException")
        data, mime = self.media[media_id]
        return Reply(200, {
            "messaging_product": "whatsapp", "id": media_id, "mime_type": mime,
            "sha256": hashlib.sha256(data).hexdigest(), "file_size": len(data),
            "url": f"{self.http.url}/whatsapp_business/attachments/?mid={media_id}&ext=1"})

    def _file(self, req: Request) -> Reply:
        media_id = req.query.get("mid", "")
        if media_id not in self.media:
            return Reply(404, b"", {"Content-Type": "text/plain"})
        data, mime = self.media[media_id]
        return Reply(200, data, {"Content-Type": mime})


def _multipart(req: Request) -> dict[str, tuple[str | None, bytes]]:
    """A multipart/form-data body's fields: name -> (filename, bytes)."""
    head = f"Content-Type: {req.headers.get('content-type', '')}\r\n\r\n".encode()
    msg = BytesParser(policy=HTTP).parsebytes(head + req.body)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = (part.get_filename(), payload)
    return fields


# Webhook bodies -------------------------------------------------------------------------------

def envelope(value: dict[str, Any], *, field_: str = "messages",
             phone_number_id: str = PHONE_ID) -> dict[str, Any]:
    """One change in Meta's webhook envelope."""
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": DISPLAY, "phone_number_id": phone_number_id},
             **value}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": field_}]}]}


def message(id: str, from_: str, text: str = "", *, name: str | None = "Maria",
            type: str = "text", timestamp: int = 1739321024,
            phone_number_id: str = PHONE_ID, **extra: Any) -> bytes:
    """A customer's message; ``type`` other than text takes its part in ``extra``
    (``image={"id": ..., "mime_type": ...}``), as do ``context`` and ``group_id``."""
    msg: dict[str, Any] = {"from": from_, "id": id, "timestamp": str(timestamp), "type": type}
    if type == "text":
        msg["text"] = {"body": text}
    msg.update(extra)
    contacts = [{"profile": {"name": name}, "wa_id": from_}] if name else []
    return json.dumps(envelope({"contacts": contacts, "messages": [msg]},
                               phone_number_id=phone_number_id)).encode()


def status(id: str, status: str, *, recipient: str = "16505551234",
           timestamp: int = 1750857384, code: int | None = None, title: str = "",
           details: str = "", phone_number_id: str = PHONE_ID, ref: str | None = None) -> bytes:
    """A status of one of our messages; ``code`` adds the errors[] of a failed one, ``ref`` the
    ``biz_opaque_callback_data`` its send carried."""
    st: dict[str, Any] = {"id": id, "status": status, "timestamp": str(timestamp),
                          "recipient_id": recipient,
                          **({"biz_opaque_callback_data": ref} if ref else {})}
    if code is not None:
        st["errors"] = [{"code": code, "title": title, "message": title,
                         "error_data": {"details": details}}]
    return json.dumps(envelope({"statuses": [st]}, phone_number_id=phone_number_id)).encode()


def account_update(event: str = "ACCOUNT_RESTRICTION") -> bytes:
    """Account news: the nearest the Cloud API has to a connection event (no number named)."""
    body = {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [
        {"value": {"event": event}, "field": "account_update"}]}]}
    return json.dumps(body).encode()


def headers(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    """The signature header Meta sends with a body."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}"}
