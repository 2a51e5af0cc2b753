"""A scripted local HTTP server: each fake gateway registers its routes, a test queues faults.

A route is ``(method, path regex) -> handler(Request) -> Reply``. ``fail(...)`` queues answers
that come before the handler's, in order, for the next matching requests: a status with a JSON
body and headers, a delay (a timeout), or raw bytes (malformed JSON). Every request is kept in
``requests`` so a test can check what the adapter sent.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    match: re.Match[str] | None = None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded unless bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        return json.dumps(self.body).encode(), "application/json"


Handler = Callable[[Request], Reply]


class FakeHTTP:
    """Start with ``with FakeHTTP() as fake`` or ``start()``/``stop()``; ``url`` is its base."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.faults: list[tuple[str | None, Reply]] = []  # (path regex or any, answer)
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        fake = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = Request(self.command, split.path,
                              {k: v[-1] for k, v in parse_qs(split.query).items()},
                              {k.lower(): v for k, v in self.headers.items()},
                              self.rfile.read(length) if length else b"")
                reply = fake.answer(req)
                if reply.delay:
                    time.sleep(reply.delay)
                body, ctype = reply.encoded()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        if name.lower() != "content-type":
                            self.send_header(name, value)
                    self.send_header("Content-Type", reply.headers.get("Content-Type", ctype))
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(pattern), handler))

    def fail(self, *replies: Reply | int, path: str | None = None) -> None:
        """Queue answers for the next requests (to ``path`` regex, or any), before routes."""
        with self.lock:
            for r in replies:
                self.faults.append((path, r if isinstance(r, Reply) else
                                    Reply(r, {"error": f"scripted {r}"})))

    def answer(self, req: Request) -> Reply:
        with self.lock:
            self.requests.append(req)
            for i, (path, reply) in enumerate(self.faults):
                if path is None or re.search(path, req.path):
                    del self.faults[i]
                    return reply
        for method, pattern, handler in self.routes:
            m = pattern.fullmatch(req.path)
            if m and method == req.method:
                req.match = m
                return handler(req)
        return Reply(404, {"error": f"no route {req.method} {req.path}"})

    def start(self) -> FakeHTTP:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeHTTP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
