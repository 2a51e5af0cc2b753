"""The path of one message, end to end, over HTTP against a real running server.

Nothing here waits a fixed time for something to happen: each wait is on a condition, with a
deadline. An absence ("no second reply") is shown once the conversation has settled: every
message the customer sent has its turn's outcome and every reply has gone out. A reply answers
a pending message, so with none pending none can come later.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from gateway_bridge import simulator as wire
from server.db import make_engine
from server.secretbox import unseal
from tests.conftest import DEMO_DOCS, Server, fresh_database, server_env

ADMIN = {"Authorization": "Bearer test-admin-token"}
T = TypeVar("T")


def _rows(srv: Server, sql: str, *args: object) -> list[tuple]:
    """Read the server's database directly, whichever kind it is."""
    engine = make_engine(srv.db_url)
    if engine.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql, tuple(args)).fetchall()]
    finally:
        engine.dispose()


def _instance_secret(srv: Server) -> str:
    stored = _rows(srv, "SELECT webhook_secret FROM instances WHERE name='demo'")[0][0]
    return unseal(stored)  # sealed at rest with the tests' ATENDE_SECRET_KEY


def _wait(what: str, check: Callable[[], T | None], timeout: float = 60) -> T:
    """``check()`` once it is truthy; an AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def _replies(srv: Server, phone: str) -> list[dict]:
    chat = httpx.get(f"{srv.url}/simulator/api/demo/messages", params={"phone": phone}).json()
    return [m for m in chat if m["direction"] == "out"]


def _wait_reply(srv: Server, phone: str, count: int = 1, timeout: float = 60) -> list[dict]:
    return _wait(f"{count} replies to {phone}",
                 lambda: (out := _replies(srv, phone)) and len(out) >= count and out, timeout)


def _settled(srv: Server, phone: str) -> list[tuple[str, str, str]] | None:
    """The conversation's messages (direction, status, provider id), oldest first, once nothing
    in it is left to do: no customer message waits for or is in a turn, and every reply went
    out. None until then."""
    rows = _rows(srv, "SELECT m.direction, m.status, m.provider_message_id FROM messages m "
                 "JOIN conversations c ON m.conversation_id=c.id WHERE c.address=? "
                 "ORDER BY m.id", phone)
    waiting = [r for r in rows if r[0] == "in" and r[1] in ("pending", "processing")]
    unsent = [r for r in rows if r[0] == "out" and r[1] not in ("sent", "delivered")]
    return rows if rows and not waiting and not unsent else None


def _journey(srv: Server, provider_id: str) -> list[dict]:
    (msg_id,) = _rows(srv, "SELECT id FROM messages WHERE provider_message_id=?", provider_id)[0]
    return httpx.get(f"{srv.url}/api/messages/{msg_id}", headers=ADMIN).json()["journey"]


def _signed_post(srv: Server, payload: dict, secret: str | None = None) -> httpx.Response:
    body = json.dumps(payload).encode()
    sig = wire.sign(body, secret or _instance_secret(srv))
    return httpx.post(f"{srv.url}/webhooks/simulator/demo", content=body,
                      headers={wire.SIGNATURE_HEADER: sig, "Content-Type": "application/json"})


def _message(phone: str, text: str, **kw: object) -> dict:
    return {"event": "message", "id": f"m-{uuid.uuid4()}", "from": phone, "text": text,
            "timestamp": int(time.time()), **kw}


def test_question_is_answered_from_the_knowledge_base(server: Server) -> None:
    phone, asked = "5511912340001", "qual o prazo de entrega pro norte?"
    sent = httpx.post(f"{server.url}/simulator/api/demo/messages",
                      json={"phone": phone, "name": "Maria", "text": asked})
    assert sent.status_code == 200 and sent.json()["webhook_status"] == 200
    reply = _wait_reply(server, phone)[0]
    assert reply["text"].strip()

    # The stored question, once, and the reply beside it with the passages it stands on.
    (msg_id,) = _rows(server, "SELECT id FROM messages WHERE provider_message_id=?",
                      sent.json()["id"])[0]
    msgs = httpx.get(f"{server.url}/api/messages/{msg_id}", headers=ADMIN).json()
    assert msgs["status"] == "answered" and msgs["text"] == asked
    assert "8 a 15" in reply["text"]
    events = [s["event"] for s in msgs["journey"]]
    assert events[:4] == ["received", "turn_started", "session_opened", "answered"]
    conv = httpx.get(f"{server.url}/api/conversations/{msgs['conversation_id']}/messages",
                     headers=ADMIN).json()
    out = [m for m in conv if m["direction"] == "out"]
    assert len(out) == 1 and out[0]["reply_to_id"] == msg_id
    assert out[0]["provider_message_id"] == reply["id"] and out[0]["text"] == reply["text"]
    assert out[0]["prompt_tokens"] > 100 and out[0]["completion_tokens"] > 0
    grounding = out[0]["grounding"]
    assert grounding, "the reply must keep the ids of the passages it used"
    docs = [httpx.get(f"{server.url}/api/kb/default/passages/{pid}", headers=ADMIN).json()["doc"]
            for pid in grounding]
    assert docs[0] == "entregas-e-frete.md"

    # The phone's delivery receipt comes back as a status webhook and lands in the journey.
    journey = _wait("the delivery receipt", lambda: (j := httpx.get(
        f"{server.url}/api/messages/{out[0]['id']}", headers=ADMIN).json())["status"] ==
        "delivered" and j, timeout=10)
    assert [s["event"] for s in journey["journey"]] == ["queued", "sent", "delivered"]


def test_same_webhook_twice_stores_one_message_and_one_reply(server: Server) -> None:
    phone = "5511912340002"
    payload = _message(phone, "qto tempo p/ trocar?", name="Ana")
    first, second = _signed_post(server, payload), _signed_post(server, payload)
    assert first.json()["stored"] == 1
    assert second.status_code == 200 and second.json() == {
        "stored": 0, "duplicates": 1, "ignored": 0, "statuses": 0}
    rows = _wait("the question's turn and its reply to be done", lambda: _settled(server, phone))
    # Settled with one message in and one reply out: nothing is left that a turn could answer.
    replies = _replies(server, phone)
    assert len(replies) == 1
    assert [(d, s, p) for d, s, p in rows] == [("in", "answered", payload["id"]),
                                               ("out", rows[1][1], replies[0]["id"])]
    events = [s["event"] for s in _journey(server, payload["id"])]
    assert events[0] == "received" and events.count("duplicate") == 1
    assert events.count("turn_started") == 1


BURST_WINDOW = 4.0  # the patient server's debounce, seconds


@pytest.fixture(params=["sqlite", "postgresql"])
def patient_server(request: pytest.FixtureRequest, tmp_path: Path,
                   llm) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """A server of its own that waits BURST_WINDOW after a message before its turn (the shared
    one waits 0.3 s, which a loaded machine overruns between two webhooks), with the demo
    shop's documents uploaded through the API."""
    with fresh_database(request.param, tmp_path) as url:
        srv = Server(tmp_path, server_env(tmp_path, ATENDE_DATABASE_URL=url,
                                          ATENDE_TURN_DEBOUNCE_SECONDS=str(BURST_WINDOW)), url)
        srv.start()
        try:
            files = [("files", (f.name, f.read_bytes(), "text/markdown"))
                     for f in sorted(DEMO_DOCS.glob("*.md"))]
            up = httpx.post(f"{srv.url}/api/kb/default/documents", files=files, headers=ADMIN,
                            timeout=300)
            assert up.status_code == 200, up.text
            yield srv
        finally:
            srv.stop()


def test_a_burst_is_answered_as_one_turn(patient_server: Server) -> None:
    srv, phone = patient_server, "5511912340003"
    started = time.monotonic()
    burst = [_message(phone, text) for text in ("oi", "vcs parcelam no cartao?",
                                                  "em quantas vezes?")]
    for payload in burst:
        assert _signed_post(srv, payload).json()["stored"] == 1
    took = time.monotonic() - started
    # The first message's turn starts BURST_WINDOW after it was stored, so it finds the
    # whole burst stored: the burst is one turn by construction, not by luck.
    assert took < BURST_WINDOW, f"the burst took {took:.1f}s: longer than the server waits"
    rows = _wait("the burst's turn and its reply to be done", lambda: _settled(srv, phone))
    assert [(d, s) for d, s, _ in rows] == [("in", "answered")] * 3 + [("out", rows[3][1])]
    assert len(_replies(srv, phone)) == 1
    for payload in burst:
        started_turn = [s["detail"] for s in _journey(srv, payload["id"])
                        if s["event"] == "turn_started"]
        assert started_turn == [{"merged": 3}]


def test_stale_backlog_is_stored_but_not_answered(server: Server) -> None:
    phone = "5511912340004"
    old = _message(phone, "oi, alguém aí?", timestamp=int(time.time()) - 3600)
    assert _signed_post(server, old).json()["stored"] == 1
    # A fresh message after it gets a turn; the stale one is left out of it (and of any turn
    # before it), and stays for a human.
    fresh = _message(phone, "qual o prazo para trocar um produto?")
    assert _signed_post(server, fresh).json()["stored"] == 1
    rows = _wait("the fresh message's turn to be done", lambda: _settled(server, phone))
    assert rows[:2] == [("in", "stale", old["id"]), ("in", "answered", fresh["id"])]
    assert [d for d, _, _ in rows[2:]] == ["out"]
    assert [s["event"] for s in _journey(server, old["id"])] == ["received", "stale"]
    assert [s["detail"] for s in _journey(server, fresh["id"])
            if s["event"] == "turn_started"] == [{"merged": 1}]


def test_a_gateway_down_for_a_while_delays_the_reply_and_loses_nothing(server: Server,
                                                                       fake_gateway) -> None:
    from server.db import sessions_for
    from server.services import instances

    name = f"loja-{uuid.uuid4().hex[:6]}"  # a number whose gateway is down, then back
    inst = instances.ensure_simulator(sessions_for(server.db_url), name, fake_gateway.url)
    fake_gateway.answers = [503, (429, {"Retry-After": "5"}), 200]
    body = json.dumps({"event": "message", "id": f"gw-{uuid.uuid4().hex}", "from": "5511955550000",
                       "name": "Ana", "text": "qto custa a entrega expressa",
                       "timestamp": int(time.time())}).encode()
    assert httpx.post(f"{server.url}/webhooks/simulator/{name}", content=body, headers={
        wire.SIGNATURE_HEADER: wire.sign(body, inst.webhook_secret),
        "Content-Type": "application/json"}).status_code == 200
    seen: dict[int, float] = {}

    def tried(times: int) -> bool:
        seen.setdefault(len(fake_gateway.received), time.monotonic())
        return len(fake_gateway.received) >= times

    _wait("three tries at the gateway", lambda: tried(3))
    assert [to for to, _ in fake_gateway.received] == ["5511955550000"] * 3
    assert seen[3] - seen[2] > 4  # waited as the gateway asked
    sql = ("SELECT m.id, m.status FROM messages m JOIN instances i ON i.id = m.instance_id "
           "WHERE i.name=? AND m.direction='out'")
    ((reply_id, status),) = _wait("the reply recorded as sent", lambda: (
        r := _rows(server, sql, name)) and r[0][1] == "sent" and r, timeout=10)
    steps = httpx.get(f"{server.url}/api/messages/{reply_id}", headers=ADMIN).json()["journey"]
    errors = [s["detail"] for s in steps if s["event"] == "send_error"]
    assert [e["retry_in_s"] for e in errors] == [2, 5] and steps[-1]["event"] == "sent"
    assert status == "sent"


def test_an_agent_message_of_only_a_nul_is_refused_not_sent_empty(server: Server) -> None:
    """Dropped as PostgreSQL requires, "\x00" is no text: it was sent as an empty message the
    gateway refuses, while the conversation went to a person."""
    phone = "5511955550042"
    httpx.post(f"{server.url}/simulator/api/demo/messages", timeout=30,
               json={"phone": phone, "name": "Rita", "text": "oi"})
    (conv_id,), = _rows(server, "SELECT id FROM conversations WHERE address=?", phone)
    url = f"{server.url}/api/conversations/{conv_id}/messages"
    assert httpx.post(url, headers=ADMIN, data={"text": "\x00"}).status_code == 400
    sent = httpx.post(url, headers=ADMIN, data={"text": "Oi\x00, Rita!"})
    assert sent.status_code < 300, sent.text
    rows = _rows(server, "SELECT text FROM messages WHERE conversation_id=? AND author='agent'",
                 conv_id)
    assert rows == [("Oi, Rita!",)]
