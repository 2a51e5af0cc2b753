"""A fake Evolution API v2 on FakeHTTP, speaking its wire format, and webhook body builders.

What a test can set: ``state`` (open, connecting, close) and the QR (``qr_base64``,
``qr_code``, ``pairing_code``), the messages kept per chat (``keep``), media by message id
(``media``) and plain files served on the gateway's host (``files``). What it can read:
``sent`` (one ``Sent`` per send). Every route wants the ``apikey`` header, as Evolution's
``auth.guard.ts`` does: 401 without it or with a wrong one, 404 for an unknown instance.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.gateways.fakehttp import FakeHTTP, Reply, Request

INSTANCE = "sales-01"
API_KEY = "evo-global-key"
OWN = "5511888880000@s.whatsapp.net"  # the instance's own number
_ids = itertools.count(1)


def jid_of(number: str) -> str:
    """What Evolution's ``createJid`` makes of a ``number`` (without its BR/MX digit rules)."""
    if "@" in number:
        return number
    return "".join(ch for ch in number if ch.isdigit()) + "@s.whatsapp.net"


def _error(status: int, error: str, message: Any) -> Reply:
    """Evolution's error body (main.ts's error handler)."""
    return Reply(status, {"status": status, "error": error, "response": {"message": message}})


@dataclass
class Sent:
    to: str
    kind: str  # text, image, document, video, audio
    text: str | None = None
    caption: str | None = None
    mime: str | None = None
    filename: str | None = None
    data: bytes | None = None
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    id: str = ""


class FakeEvolution:
    """Registers Evolution's routes on a FakeHTTP; ``url`` is the api_url to configure."""

    def __init__(self, http: FakeHTTP, instance: str = INSTANCE, api_key: str = API_KEY) -> None:
        self.http, self.instance, self.api_key = http, instance, api_key
        self.url = http.url
        self.state = "open"
        self.qr_base64: str | None = None
        self.qr_code: str | None = None
        self.pairing_code: str | None = None
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.media: dict[str, tuple[bytes, str, str | None]] = {}  # id -> (bytes, mime, name)
        self.files: dict[str, tuple[bytes, str]] = {}  # path -> (bytes, content type)
        self.sent: list[Sent] = []
        name = r"(?P<name>[^/]+)"
        for method, route, handler in (
                ("POST", "message/sendText", self._send_text),
                ("POST", "message/sendMedia", self._send_media),
                ("POST", "message/sendWhatsAppAudio", self._send_audio),
                ("GET", "instance/connectionState", self._state),
                ("GET", "instance/connect", self._connect),
                ("POST", "chat/getBase64FromMediaMessage", self._base64),
                ("POST", "chat/findMessages", self._find)):
            http.route(method, f"/{route}/{name}", self._guarded(handler))
        http.route("GET", r"/files/(?P<path>.+)", self._guarded(self._file, instance=False))

    # -- state a test sets -------------------------------------------------------------------

    def keep(self, data: dict[str, Any]) -> None:
        """Keep a message object (``message_data``) in its chat's history."""
        self.messages.setdefault(data["key"]["remoteJid"], []).append(data)

    # -- the routes --------------------------------------------------------------------------

    def _guarded(self, handler: Callable[[Request], Reply], instance: bool = True
                 ) -> Callable[[Request], Reply]:
        def serve(req: Request) -> Reply:
            if req.headers.get("apikey") != self.api_key:
                return _error(401, "Unauthorized", "Unauthorized")
            if instance and req.match and req.match.group("name") != self.instance:
                return _error(404, "Not Found",
                              [f'The "{req.match.group("name")}" instance does not exist'])
            return handler(req)
        return serve

    def _body(self, req: Request) -> dict[str, Any]:
        body = req.json()
        return body if isinstance(body, dict) else {}

    def _answer(self, req: Request, to: str, kind: str, message: dict[str, Any],
                mtype: str, **record: Any) -> Reply:
        msg_id = f"3EB0{next(_ids):016X}"
        data = {"key": {"remoteJid": jid_of(to), "fromMe": True, "id": msg_id},
                "pushName": "Você", "status": "PENDING", "message": message,
                "contextInfo": None, "messageType": mtype,
                "messageTimestamp": int(time.time()), "instanceId": "clx0instance01",
                "source": "unknown"}
        self.sent.append(Sent(to=to, kind=kind, body=self._body(req), headers=req.headers,
                              id=msg_id, **record))
        self.keep(data)
        return Reply(201, data)

    def _send_text(self, req: Request) -> Reply:
        body = self._body(req)
        if not isinstance(body.get("number"), str) or not isinstance(body.get("text"), str):
            return _error(400, "Bad Request", ['requires property "number"'])
        if not body["text"].strip():
            return _error(400, "Bad Request", "Text is required")
        return self._answer(req, body["number"], "text", {"conversation": body["text"]},
                            "conversation", text=body["text"])

    def _decode(self, value: Any) -> bytes | None:
        try:
            return base64.b64decode(value, validate=True) if isinstance(value, str) else None
        except (binascii.Error, ValueError):
            return None

    def _send_media(self, req: Request) -> Reply:
        body = self._body(req)
        kind = body.get("mediatype")
        data = self._decode(body.get("media"))
        if kind not in ("image", "document", "video", "audio") or not data:
            return _error(400, "Bad Request", ["mediatype and base64 media are required"])
        if kind == "document" and not body.get("fileName"):
            # Evolution looks for a name in the media string and fails on base64
            return _error(400, "Bad Request", "TypeError: Cannot read properties of null")
        part = {"mimetype": body.get("mimetype"), "caption": body.get("caption"),
                "fileName": body.get("fileName"), "fileLength": str(len(data))}
        return self._answer(req, body.get("number", ""), kind, {f"{kind}Message": part},
                            f"{kind}Message", caption=body.get("caption"),
                            mime=body.get("mimetype"), filename=body.get("fileName"), data=data)

    def _send_audio(self, req: Request) -> Reply:
        body = self._body(req)
        data = self._decode(body.get("audio"))
        if not data:
            return _error(400, "Bad Request", "File buffer, URL, or base64 audio is required")
        part = {"mimetype": "audio/ogg; codecs=opus", "ptt": True}
        return self._answer(req, body.get("number", ""), "audio", {"audioMessage": part},
                            "audioMessage", mime="audio/ogg; codecs=opus", data=data)

    def _state(self, req: Request) -> Reply:
        return Reply(200, {"instance": {"instanceName": self.instance, "state": self.state}})

    def _connect(self, req: Request) -> Reply:
        if self.state == "open":
            return Reply(200, {"instance": {"instanceName": self.instance, "state": "open"}})
        if self.state == "close":
            self.state = "connecting"  # asking for a QR starts a connection attempt
        return Reply(200, {"pairingCode": self.pairing_code, "code": self.qr_code,
                           "base64": self.qr_base64, "count": 1})

    def _base64(self, req: Request) -> Reply:
        key = self._body(req).get("message", {}).get("key", {})
        if key.get("id") not in self.media:
            return _error(400, "Bad Request", "Message not found")
        data, mime, name = self.media[key["id"]]
        return Reply(201, {"mediaType": "imageMessage", "fileName": name or f"{key['id']}.bin",
                           "caption": None, "size": {"fileLength": str(len(data))},
                           "mimetype": mime, "base64": base64.b64encode(data).decode(),
                           "buffer": None})

    def _find(self, req: Request) -> Reply:
        body = self._body(req)
        chat = body.get("where", {}).get("key", {}).get("remoteJid")
        rows = sorted(self.messages.get(chat, []), key=lambda m: m["messageTimestamp"],
                      reverse=True)  # Evolution orders by messageTimestamp desc
        size, page = int(body.get("offset") or 50), int(body.get("page") or 1)
        records = rows[size * (page - 1): size * page]
        return Reply(200, {"messages": {"total": len(rows), "pages": -(-len(rows) // size),
                                        "currentPage": page, "records": records}})

    def _file(self, req: Request) -> Reply:
        assert req.match is not None
        found = self.files.get(req.match.group("path"))
        if found is None:
            return _error(404, "Not Found", ["no such file"])
        return Reply(200, found[0], {"Content-Type": found[1]})


# -- webhook bodies ------------------------------------------------------------------------------

def envelope(event: str, data: Any, instance: str = INSTANCE) -> bytes:
    """The body Evolution posts (webhook.controller.ts)."""
    return json.dumps({"event": event, "instance": instance, "data": data,
                       "destination": "https://atende.example.com/webhooks/evolution",
                       "date_time": "2025-10-21T11:40:39.000Z", "sender": OWN,
                       "server_url": "http://localhost:8080", "apikey": None}).encode()


def message_data(id: str, from_: str, text: str = "", *, name: str | None = "Maria",
                 from_me: bool = False, timestamp: int | None = None,
                 message: dict[str, Any] | None = None, **key: Any) -> dict[str, Any]:
    """One message object (prepareMessage's shape); ``key`` adds to its key (remoteJidAlt,
    participant...); ``message`` replaces the text content."""
    return {"key": {"remoteJid": jid_of(from_), "fromMe": from_me, "id": id, **key},
            "pushName": name, "status": "SERVER_ACK" if from_me else "DELIVERY_ACK",
            "message": message if message is not None else {"conversation": text},
            "messageType": next(iter(message)) if message else "conversation",
            "messageTimestamp": timestamp if timestamp is not None else int(time.time()),
            "instanceId": "clx0instance01", "source": "android"}


def message(id: str, from_: str, text: str = "", *, instance: str = INSTANCE,
            **kw: Any) -> bytes:
    """A ``messages.upsert`` body; ``from_`` is digits or a JID."""
    return envelope("messages.upsert", message_data(id, from_, text, **kw), instance)


def sent_echo(id: str, to: str, text: str, *, instance: str = INSTANCE) -> bytes:
    """A ``send.message`` body: our own send, echoed."""
    data = message_data(id, to, text, name="Você", from_me=True)
    return envelope("send.message", data, instance)


def status(id: str, status: str = "DELIVERY_ACK", *, to: str = "5511999990000",
           from_me: bool = True, instance: str = INSTANCE) -> bytes:
    """A ``messages.update`` body: SERVER_ACK, DELIVERY_ACK, READ, PLAYED, ERROR..."""
    return envelope("messages.update", {
        "keyId": id, "remoteJid": jid_of(to), "fromMe": from_me, "participant": None,
        "status": status, "instanceId": "clx0instance01", "messageId": "cm2x0k0000001msgdb"},
        instance)


def connection(state: str = "open", status_reason: int = 200, *,
               instance: str = INSTANCE) -> bytes:
    """A ``connection.update`` body: open, connecting, close."""
    return envelope("connection.update", {"instance": instance, "state": state,
                                          "statusReason": status_reason}, instance)


def qrcode(base64_png: str, code: str = "2@abc", *, instance: str = INSTANCE) -> bytes:
    """A ``qrcode.updated`` body."""
    return envelope("qrcode.updated", {"qrcode": {"instance": instance, "pairingCode": None,
                                                  "code": code, "base64": base64_png}}, instance)


def headers(body: bytes, secret: str) -> dict[str, str]:
    """Evolution signs nothing: no headers. The secret travels in the URL (``query``)."""
    return {}


def query(secret: str) -> dict[str, str]:
    """The webhook URL's query as Evolution posts to it: ``?token=<secret>``."""
    return {"token": secret}
