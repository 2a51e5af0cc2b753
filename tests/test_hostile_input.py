"""Hostile requests against a real server: a clear 4xx, bounded memory, nothing stored."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from gateway_bridge import PayloadError
from gateway_bridge import simulator as wire
from gateway_bridge.events import load_json
from tests.conftest import Server
from tests.test_message_path import ADMIN, _instance_secret, _rows, _signed_post

MB = 1024 * 1024


def test_a_number_of_thousands_of_digits_is_a_payload_error_for_every_adapter() -> None:
    with pytest.raises(PayloadError, match="digits"):
        load_json(b'{"event": "message", "timestamp": ' + b"9" * 5000 + b"}")
    for hostile in (b"\xff\xfe", b"[" * 100_000, b"[1, 2]", b'{"a": NaN'):
        with pytest.raises(PayloadError):
            load_json(hostile)


def test_a_signed_webhook_with_a_5000_digit_number_is_a_400(server: Server) -> None:
    body = ('{"event": "message", "id": "big-1", "from": "5511900000001", "text": "oi", '
            '"timestamp": ' + "1" * 5000 + "}").encode()
    secret = _instance_secret(server)
    resp = httpx.post(f"{server.url}/webhooks/simulator/demo", content=body,
                      headers={wire.SIGNATURE_HEADER: wire.sign(body, secret),
                               "Content-Type": "application/json"})
    assert resp.status_code == 400 and "digits" in resp.json()["detail"]
    assert _rows(server, "SELECT count(*) FROM messages WHERE provider_message_id='big-1'") \
        == [(0,)]
    ok = _signed_post(server, {"event": "message", "id": "big-2", "from": "5511900000001",
                               "text": "oi", "timestamp": int(time.time())})
    assert ok.status_code == 200  # the instance still takes what is well formed


def test_an_id_or_a_number_beyond_what_the_database_holds_is_a_422(server: Server) -> None:
    """A person's id past 64 bits, or a team's window of 10^20 minutes: refused by name, not
    a 500 from the database's integer."""
    _signed_post(server, {"event": "message", "id": "huge-1", "from": "5511900000077",
                          "text": "oi", "timestamp": int(time.time())})
    ((conv,),) = _rows(server, "SELECT conversation_id FROM messages "
                       "WHERE provider_message_id='huge-1'")
    for method, path, body in (
            ("POST", f"/api/conversations/{conv}/assign", {"user_id": 2**63}),
            ("POST", f"/api/conversations/{conv}/reopen", {"user_id": 2**80}),
            ("POST", "/api/teams", {"name": "enorme", "closed_window_minutes": 10**20})):
        resp = httpx.request(method, f"{server.url}{path}", json=body, headers=ADMIN)
        assert resp.status_code == 422, (path, resp.status_code, resp.text)
        assert resp.json()["detail"][0]["type"] == "less_than_equal", resp.text
    assert _rows(server, "SELECT count(*) FROM teams WHERE name='enorme'") == [(0,)]


def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024


def _reset_peak(pid: int) -> int:
    """Start measuring the process's peak memory from now (Linux: clear_refs 5)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
    return _peak_rss(pid)


def _chunks(total: int, size: int = MB) -> Iterator[bytes]:
    block = b"x" * size
    for _ in range(total // size):
        yield block


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK),
                    reason="needs /proc/PID/clear_refs to measure peak memory")
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_200_mb_webhook_is_refused_before_it_is_held(server: Server, declared: bool) -> None:
    """Anyone who knows an instance's name can send one: it must cost no memory."""
    assert server.proc is not None
    pid = server.proc.pid
    before = _reset_peak(pid)
    headers = {"Content-Type": "application/json"}
    if declared:
        headers["Content-Length"] = str(200 * MB)
    got: list[int | str] = []

    def send() -> None:
        try:
            got.append(httpx.post(f"{server.url}/webhooks/simulator/demo", headers=headers,
                                  content=_chunks(200 * MB), timeout=60).status_code)
        except httpx.HTTPError as exc:  # the server may close while we still send
            got.append(type(exc).__name__)

    sender = threading.Thread(target=send)
    sender.start()
    sender.join(120)
    assert got and got[0] in (413, "WriteError", "RemoteProtocolError", "ReadError"), got
    grew = _peak_rss(pid) - before
    assert grew < 10 * MB, f"peak memory grew by {grew / MB:.1f} MB"
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_the_admin_token_needs_the_bearer_scheme(server: Server) -> None:
    url = f"{server.url}/api/instances"
    assert httpx.get(url, headers=ADMIN).status_code == 200
    assert httpx.get(url, headers={"Authorization": "bearer test-admin-token"}).status_code \
        == 200  # the scheme's case is free (RFC 7235)
    for wrong in ("test-admin-token", "Basic test-admin-token", "Bearer", "Bearertest-admin-token",
                  "Token test-admin-token"):
        assert httpx.get(url, headers={"Authorization": wrong}).status_code == 401, wrong


def test_a_chat_completion_body_over_the_limit_is_refused_unread(server: Server,
                                                                token: str) -> None:
    resp = httpx.post(f"{server.url}/v1/chat/completions", content=_chunks(20 * MB), timeout=60,
                      headers={"Authorization": f"Bearer {token}",
                               "Content-Type": "application/json"})
    assert resp.status_code == 413
    assert resp.json()["error"]["type"] == "invalid_request_error"
