"""A local HTTP server speaking OpenAI's audio-transcriptions wire format, errors included.

``POST /v1/audio/transcriptions``, multipart: ``file`` and ``model`` required (a 400 in OpenAI's
error shape otherwise), ``language`` and ``response_format`` (``json``, the default, gives
``{"text": ...}``; ``text`` the bare text; ``verbose_json`` adds language and duration) read.
The text is ``texts[sha256 of the file]``, else ``default``. With ``key`` set, any other
``Authorization: Bearer`` is a 401 whose message echoes the key it was given in full (as a
careless self-hosted server might; OpenAI's masks it), so a test proves our errors scrub it.

Each request takes the next scripted behaviour first: ("status", code) answers that error,
("hang",) answers only once ``release`` is set or the fake closes (a model that never
answers), setting ``hung`` when the request arrives; ("garbage", body) answers 200 with that
body; ("ok", text) answers that text whatever the file. Every request is recorded in
``requests``: headers, form fields, and the file's name, type, size and sha256. Used where the
real OpenAI would be: it lives off this machine.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "sk-whisper-test-secret-5678"
ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
}


@dataclass
class Received:
    """One request as the fake saw it."""

    path: str
    headers: dict[str, str]
    fields: dict[str, str]
    filename: str | None = None
    content_type: str | None = None
    size: int = 0
    sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], EmailMessage | None]:
    """The form's text fields and its ``file`` part (None when absent)."""
    msg = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, str] = {}
    upload: EmailMessage | None = None
    if not isinstance(msg, EmailMessage) or not msg.is_multipart():
        return fields, None
    for part in msg.iter_parts():
        if not isinstance(part, EmailMessage):
            continue
        name = part.get_param("name", header="content-disposition")
        if name == "file":
            upload = part
        elif isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = payload.decode() if isinstance(payload, bytes) else str(payload)
    return fields, upload


class FakeWhisper:
    def __init__(self, key: str | None = KEY, default: str = "Olá, quero trocar uma blusa.",
                 texts: dict[str, str] | None = None) -> None:
        self.key = key
        self.default = default
        self.texts: dict[str, str] = dict(texts or {})
        self.script: list[tuple[Any, ...]] = []
        self.requests: list[Received] = []
        self.hung = threading.Event()
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _error(self, code: int, message: str) -> None:
                kind, err_code = ERRORS.get(code, ("server_error", None))
                body = {"error": {"message": message, "type": kind, "param": None,
                                  "code": err_code}}
                self._send(code, json.dumps(body).encode())

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fields, upload = parse_multipart(self.headers.get("Content-Type", ""), body)
                data = upload.get_payload(decode=True) if upload is not None else None
                audio = data if isinstance(data, bytes) else b""
                fake.requests.append(Received(
                    path=self.path, headers=dict(self.headers.items()), fields=fields,
                    filename=upload.get_filename() if upload is not None else None,
                    content_type=upload.get_content_type() if upload is not None else None,
                    size=len(audio), sha256=sha256(audio) if upload is not None else None))
                if self.path.rstrip("/") != "/v1/audio/transcriptions":
                    return self._error(404, f"Invalid URL (POST {self.path})")
                if fake.key is not None:
                    auth = self.headers.get("Authorization", "")
                    if auth != f"Bearer {fake.key}":
                        given = auth.removeprefix("Bearer ")
                        return self._error(401, f"Incorrect API key provided: {given}.")
                step = fake.script.pop(0) if fake.script else ("auto",)
                if step[0] == "status":
                    return self._error(step[1], "The server had an error while processing "
                                       "your request." if step[1] >= 500 else "Error.")
                if step[0] == "hang":
                    fake.hung.set()
                    fake.release.wait(120)
                    return self._error(500, "too late")
                if step[0] == "garbage":
                    return self._send(200, step[1], ctype="text/html")
                if upload is None:
                    return self._error(400, "Could not parse multipart form: file missing")
                if not fields.get("model"):
                    return self._error(400, "you must provide a model parameter")
                text = step[1] if step[0] == "ok" else fake.texts.get(sha256(audio),
                                                                        fake.default)
                form = fields.get("response_format", "json")
                if form == "text":
                    return self._send(200, text.encode(), ctype="text/plain; charset=utf-8")
                out: dict[str, Any] = {"text": text}
                if form == "verbose_json":
                    out |= {"task": "transcribe", "language": fields.get("language", "pt"),
                            "duration": 1.0, "segments": []}
                self._send(200, json.dumps(out, ensure_ascii=False).encode())

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
