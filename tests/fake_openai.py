"""A local HTTP server speaking OpenAI's chat-completions wire format, errors included.

Each request takes the next scripted behaviour: ("ok", text), ("status", code[, headers]),
("slow", seconds), ("garbage", body), ("hold", event): answers only once the event is set,
setting ``held`` when the request arrives (a model caught mid-answer); ("drip", text, seconds):
a stream writing four characters every ``seconds``, counting them in ``dripped`` and setting
``hung_up`` when the reader has gone. Used where the real
OpenAI would be: it lives off this machine.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ERRORS = {
    401: ("Incorrect API key provided: sk-test-****1234.", "invalid_request_error",
          "invalid_api_key"),
    404: ("The model `nope` does not exist", "invalid_request_error", "model_not_found"),
    429: ("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error", None),
}


class FakeOpenAI:
    def __init__(self) -> None:
        self.script: list[tuple[Any, ...]] = []
        self.requests: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.held = threading.Event()
        self.hung_up = threading.Event()
        self.dripped = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None,
                      ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - /v1/models
                if self.headers.get("Authorization") != "Bearer sk-test-secret-1234":
                    return self._error(401)
                self._send(200, json.dumps({"object": "list", "data": [
                    {"id": "gpt-fake", "object": "model"}]}).encode())

            def _error(self, code: int, headers: dict[str, str] | None = None) -> None:
                msg, kind, err_code = ERRORS.get(code, ("error", "server_error", None))
                body = {"error": {"message": msg, "type": kind, "param": None, "code": err_code}}
                self._send(code, json.dumps(body).encode(), headers)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                req = json.loads(self.rfile.read(length))
                fake.requests.append(req)
                fake.times.append(time.monotonic())
                step = fake.script.pop(0) if fake.script else ("ok", "Olá!")
                kind = step[0]
                if kind == "status":
                    return self._error(step[1], step[2] if len(step) > 2 else None)
                if kind == "hold":
                    fake.held.set()
                    step[1].wait(120)
                    step = ("ok", "tarde demais")
                if kind == "slow":
                    time.sleep(step[1])
                    step = ("ok", "tarde demais")
                if kind == "drip":
                    return self._drip(step[1], step[2], req)
                if kind == "garbage":
                    return self._send(200, step[1])
                text = step[1]
                if req.get("stream"):
                    return self._stream(text, req)
                body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                        "model": req["model"],
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 3,
                                  "total_tokens": 14}}
                self._send(200, json.dumps(body).encode())

            def _stream(self, text: str, req: dict[str, Any]) -> None:
                parts = [text[i:i + 4] for i in range(0, len(text), 4)]
                lines = [json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1,
                                     "model": req["model"], "choices": [
                                         {"index": 0, "delta": {"content": p},
                                          "finish_reason": None}]}) for p in parts]
                body = "".join(f"data: {line}\n\n" for line in lines) + "data: [DONE]\n\n"
                self._send(200, body.encode(), ctype="text/event-stream")

            def _drip(self, text: str, seconds: float, req: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")  # the body ends when the socket does
                self.end_headers()
                for i in range(0, len(text), 4):
                    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1,
                             "model": req["model"], "choices": [
                                 {"index": 0, "delta": {"content": text[i:i + 4]},
                                  "finish_reason": None}]}
                    try:
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                    except OSError:
                        fake.hung_up.set()
                        return
                    fake.dripped += 1
                    time.sleep(seconds)
                self.wfile.write(b"data: [DONE]\n\n")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
