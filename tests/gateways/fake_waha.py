"""A fake WAHA server on ``FakeHTTP``, speaking WAHA's wire format, and webhook body builders.

State a test sets: ``status`` (the session's: WORKING, SCAN_QR_CODE, STOPPED, FAILED...),
``qr_value`` (what ``/auth/qr?format=raw`` gives), ``engine`` (WEBJS answers a send with
WhatsApp Web's id object, NOWEB/GOWS with the id string), ``messages`` (per chat id, the
history ``/chats/{chatId}/messages`` returns, newest first) and ``files`` (what
``/api/files/...`` serves; ``file_url`` adds one). ``sent`` records each send: to, kind, text,
caption, mime, filename and the decoded bytes. Like WAHA with ``WAHA_API_KEY`` set, every
``/api`` call needs ``X-Api-Key`` (401 ``{"message": "Unauthorized", "statusCode": 401}``).
Faults (429, 500, delays, bad bodies) are queued on ``http`` with ``FakeHTTP.fail``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tests.gateways.fakehttp import FakeHTTP, Reply, Request

SESSION_STATUSES = ("STOPPED", "STARTING", "SCAN_QR_CODE", "WORKING", "FAILED")
CHAT_ID = re.compile(r"^[\w.-]+@(c\.us|lid|g\.us|newsletter|broadcast|s\.whatsapp\.net)$")
SEND_KINDS = {"sendText": "text", "sendImage": "image", "sendFile": "document",
              "sendVoice": "audio"}
PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


@dataclass
class Sent:
    """One message WAHA accepted, as the adapter put it on the wire."""

    to: str
    kind: str  # text, image, document, audio
    text: str | None = None
    caption: str | None = None
    mime: str | None = None
    filename: str | None = None
    data: bytes | None = None
    convert: bool | None = None
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    id: str = ""


class FakeWaha:
    """``with FakeWaha() as waha``: ``waha.url`` is the ``api_url`` of an instance."""

    def __init__(self, *, api_key: str | None = "waha-key", session: str = "default",
                 engine: str = "NOWEB") -> None:
        self.http = FakeHTTP()
        self.url = self.http.url
        self.api_key = api_key
        self.session = session
        self.engine = engine
        self.status = "WORKING"
        self.qr_value = "2@Zm9vYmFy,c2VjcmV0a2V5,aWRlbnRpdHk=,YWR2c2VjcmV0"
        self.me = {"id": "5511900000000@c.us", "pushName": "Atende Loja"}
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        self.sent: list[Sent] = []
        self._counter = 0
        h = self.http
        h.route("GET", r"/api/sessions/([^/]+)", self._get_session)
        h.route("GET", r"/api/([^/]+)/auth/qr", self._get_qr)
        h.route("GET", r"/api/([^/]+)/chats/([^/]+)/messages", self._get_messages)
        h.route("GET", r"/api/files/(.+)", self._get_file)
        for endpoint in SEND_KINDS:
            h.route("POST", rf"/api/({endpoint})", self._post_send)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeWaha:
        self.http.start()
        return self

    def stop(self) -> None:
        self.http.stop()

    def __enter__(self) -> FakeWaha:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state helpers ----------------------------------------------------------------------

    def file_url(self, name: str, data: bytes, mime: str) -> str:
        """Serve ``data`` as WAHA serves a received file; returns its ``media.url``."""
        path = f"/api/files/{self.session}/{name}"
        self.files[path] = (data, mime)
        return self.url + path

    def keep(self, chat: str, *payloads: dict[str, Any]) -> None:
        """Add messages (webhook ``payload`` shape) to a chat's history."""
        self.messages.setdefault(chat, []).extend(payloads)

    # -- WAHA's answers ---------------------------------------------------------------------

    def _refused(self, req: Request) -> Reply | None:
        if self.api_key is not None and req.headers.get("x-api-key") != self.api_key:
            return Reply(401, {"message": "Unauthorized", "statusCode": 401})
        return None

    def _missing(self, name: str) -> Reply | None:
        if name != self.session:
            return Reply(404, {"message": f"We didn't find a session with name '{name}'.\n"
                                          f"Please start it first by using POST "
                                          f"/api/sessions/{name}/start request",
                               "error": "Not Found", "statusCode": 404})
        return None

    def _not_in(self, *expected: str) -> Reply | None:
        if self.status not in expected:
            return Reply(422, {"error": "Session status is not as expected. Try again later or "
                                        "restart the session", "session": self.session,
                               "status": self.status, "expected": list(expected)})
        return None

    def _get_session(self, req: Request) -> Reply:
        assert req.match is not None
        refused = self._refused(req) or self._missing(req.match.group(1))
        if refused:
            return refused
        return Reply(200, {
            "name": self.session, "status": self.status,
            "config": {"proxy": None, "webhooks": [], "debug": False},
            "me": self.me if self.status == "WORKING" else None,
            "engine": {"engine": self.engine}})

    def _get_qr(self, req: Request) -> Reply:
        assert req.match is not None
        refused = (self._refused(req) or self._missing(req.match.group(1))
                   or self._not_in("SCAN_QR_CODE"))
        if refused:
            return refused
        if req.query.get("format") == "raw":
            return Reply(200, {"value": self.qr_value})
        if "application/json" in req.headers.get("accept", ""):
            return Reply(200, {"mimetype": "image/png", "data": base64.b64encode(PNG_1PX).decode()})
        return Reply(200, PNG_1PX, {"Content-Type": "image/png"})

    def _get_messages(self, req: Request) -> Reply:
        assert req.match is not None
        refused = (self._refused(req) or self._missing(req.match.group(1))
                   or self._not_in("WORKING"))
        if refused:
            return refused
        limit = int(req.query.get("limit") or 10)
        kept = sorted(self.messages.get(req.match.group(2), []),
                      key=lambda m: m.get("timestamp") or 0, reverse=True)
        return Reply(200, kept[:limit])

    def _get_file(self, req: Request) -> Reply:
        refused = self._refused(req)
        if refused:
            return refused
        if req.path not in self.files:
            return Reply(404, {"error": {"code": 404, "key": "FILE_NOT_FOUND",
                                         "message": "File not found",
                                         "details": "File not found or no longer available"}})
        data, mime = self.files[req.path]
        return Reply(200, data, {"Content-Type": mime})

    def _post_send(self, req: Request) -> Reply:
        assert req.match is not None
        refused = self._refused(req)
        if refused:
            return refused
        try:
            body = req.json()
        except ValueError:
            return Reply(400, {"statusCode": 400, "message": "Unexpected token in JSON",
                               "error": "Bad Request"})
        kind = SEND_KINDS[req.match.group(1)]
        problems = self._invalid(body, kind)
        if problems:
            return Reply(400, {"statusCode": 400, "message": problems, "error": "Bad Request"})
        refused = self._missing(body["session"]) or self._not_in("WORKING")
        if refused:
            return refused
        file = body.get("file") or {}
        self._counter += 1
        bare = f"3EB0{self._counter:016X}"
        chat = body["chatId"]
        serialized = f"true_{chat}_{bare}"
        self.sent.append(Sent(
            to=chat, kind=kind, text=body.get("text"), caption=body.get("caption"),
            mime=file.get("mimetype"), filename=file.get("filename"),
            data=base64.b64decode(file["data"]) if file else None,
            convert=body.get("convert"), body=body, headers=req.headers, id=serialized))
        now = int(time.time())
        if self.engine == "WEBJS":  # whatsapp-web.js' Message, serialized
            return Reply(201, {
                "_data": {"type": "chat" if kind == "text" else kind, "t": now},
                "id": {"fromMe": True, "remote": chat, "id": bare, "_serialized": serialized},
                "ack": 0, "hasMedia": kind != "text", "body": body.get("text", ""),
                "type": "chat", "timestamp": now, "from": self.me["id"], "to": chat,
                "deviceType": "web", "isForwarded": False})
        return Reply(201, {"id": serialized, "timestamp": now, "from": chat, "fromMe": True,
                           "body": body.get("text") or body.get("caption") or "",
                           "hasMedia": kind != "text", "ack": 1, "ackName": "SERVER",
                           "_data": {"key": {"remoteJid": chat, "fromMe": True, "id": bare}}})

    @staticmethod
    def _invalid(body: Any, kind: str) -> list[str]:
        """WAHA's request validation (class-validator): what is wrong, in its words."""
        if not isinstance(body, dict):
            return ["body must be an object"]
        problems = []
        if not isinstance(body.get("session"), str):
            problems.append("session must be a string")
        if not isinstance(body.get("chatId"), str) or not CHAT_ID.match(body["chatId"]):
            problems.append("chatId must be a chat id (123@c.us, 123@lid, 123@g.us)")
        if kind == "text" and not isinstance(body.get("text"), str):
            problems.append("text must be a string")
        if kind != "text":
            file = body.get("file")
            if not isinstance(file, dict) or not isinstance(file.get("mimetype"), str):
                problems.append("file.mimetype must be a string")
            elif not isinstance(file.get("data"), str) and not isinstance(file.get("url"), str):
                problems.append("file must have data or url")
            elif isinstance(file.get("data"), str):
                try:
                    base64.b64decode(file["data"], validate=True)
                except (binascii.Error, ValueError):
                    problems.append("file.data must be base64")
        return problems


# -- webhook bodies, as WAHA posts them ------------------------------------------------------

def envelope(event: str, payload: dict[str, Any], *, session: str = "default",
             engine: str = "NOWEB") -> dict[str, Any]:
    """The ``WAHAWebhook`` around a payload."""
    return {"id": f"evt_{int(time.time() * 1000):x}", "timestamp": int(time.time() * 1000),
            "event": event, "session": session, "metadata": {},
            "me": {"id": "5511900000000@c.us", "pushName": "Atende Loja"},
            "payload": payload, "engine": engine,
            "environment": {"version": "2025.11.2", "engine": engine, "tier": "CORE"}}


def _chat(address: str) -> str:
    return address if "@" in address else f"{address}@c.us"


def message_payload(id: str, from_: str, text: str = "", *, from_me: bool = False,
                    timestamp: int | None = None, **kw: Any) -> dict[str, Any]:
    """A NOWEB message ``payload``; ``id`` bare (serialized here) or already serialized."""
    chat = _chat(from_)
    serialized = id if id.startswith(("true_", "false_")) else (
        f"{'true' if from_me else 'false'}_{chat}_{id}")
    bare = serialized.split("_")[2]
    payload: dict[str, Any] = {
        "id": serialized, "timestamp": timestamp or int(time.time()), "from": chat,
        "fromMe": from_me, "source": "api" if from_me else "app", "to": None,
        "participant": None, "body": text, "hasMedia": False, "media": None, "ack": 1,
        "ackName": "SERVER", "location": None, "vCards": None, "replyTo": None,
        "_data": {"key": {"remoteJid": chat.replace("@c.us", "@s.whatsapp.net"),
                          "fromMe": from_me, "id": bare},
                  "pushName": kw.pop("name", "Maria"),
                  "message": {"conversation": text}}}
    payload.update(kw)
    return payload


def message(id: str, from_: str, text: str = "", *, event: str = "message",
            session: str = "default", **kw: Any) -> bytes:
    """A ``message`` (or ``message.any``) webhook body."""
    return json.dumps(envelope(event, message_payload(id, from_, text, **kw),
                               session=session)).encode()


def status(id: str, ack: int, *, session: str = "default") -> bytes:
    """A ``message.ack`` webhook body: ack -1 ERROR, 1 SERVER, 2 DEVICE, 3 READ, 4 PLAYED."""
    names = {-1: "ERROR", 0: "PENDING", 1: "SERVER", 2: "DEVICE", 3: "READ", 4: "PLAYED"}
    chat = id.split("_")[1] if id.count("_") >= 2 else "5511987654321@c.us"
    return json.dumps(envelope("message.ack", {
        "id": id, "from": chat, "to": "5511900000000@c.us", "participant": None,
        "fromMe": id.startswith("true_"), "ack": ack, "ackName": names.get(ack, "UNKNOWN"),
        "_data": {}}, session=session)).encode()


def connection(state: str, *, session: str = "default") -> bytes:
    """A ``session.status`` webhook body (STOPPED, STARTING, SCAN_QR_CODE, WORKING, FAILED)."""
    assert state in SESSION_STATUSES
    return json.dumps(envelope("session.status", {
        "status": state, "statuses": [{"status": state, "timestamp": int(time.time() * 1000)}],
        "data": None}, session=session)).encode()


def reaction(id: str, from_: str, emoji: str, message_id: str, *,
             session: str = "default") -> bytes:
    """A ``message.reaction`` webhook body; an empty ``emoji`` removes the reaction."""
    chat = _chat(from_)
    return json.dumps(envelope("message.reaction", {
        "id": f"false_{chat}_{id}", "from": chat, "fromMe": False, "participant": chat,
        "to": chat, "timestamp": time.time(),
        "reaction": {"text": emoji, "messageId": message_id}}, session=session)).encode()


def headers(body: bytes, secret: str) -> dict[str, str]:
    """The headers WAHA adds to a webhook whose ``hmac.key`` is ``secret``."""
    return {"Content-Type": "application/json",
            "X-Webhook-Request-Id": f"req-{hashlib.sha1(body).hexdigest()[:12]}",
            "X-Webhook-Timestamp": str(int(time.time() * 1000)),
            "X-Webhook-Hmac": hmac.new(secret.encode(), body, hashlib.sha512).hexdigest(),
            "X-Webhook-Hmac-Algorithm": "sha512"}
