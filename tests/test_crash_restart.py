"""A server killed with SIGKILL mid-turn is restarted on the same data folder: the customer
gets exactly one reply, and so does their next message (a lock left by the dead process once
silenced the conversation for good).

The server runs on its embedded defaults, as `make run` runs it. The model is a local server
speaking OpenAI's wire format that holds its answer, so the kill lands while the model is
answering; the send is caught the same way by a relay between the server and its gateway (the
built-in simulator) that passes the send on and holds back the gateway's answer.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import ATENDE, DEMO_DOCS, ROOT, Server, server_env
from tests.fake_openai import FakeOpenAI
from tests.test_message_path import ADMIN, _rows

QUESTION = "Qual o prazo para trocar um produto?"


class Relay:
    """Passes every request on to the server; ``hold_sends`` holds back the gateway's answer
    to a send (the message has reached the phone, the server has not heard so)."""

    def __init__(self, target: Callable[[], str]) -> None:
        relay = self
        self.hold_sends = False
        self.forwarded = threading.Event()
        self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length")}
                try:
                    resp = httpx.post(target() + self.path, content=body, headers=headers,
                                      timeout=30)
                except httpx.HTTPError:
                    self.send_error(502)
                    return
                if relay.hold_sends and self.path.endswith("/send"):
                    relay.forwarded.set()
                    relay.release.wait(120)
                try:
                    self.send_response(resp.status_code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(resp.content)))
                    self.end_headers()
                    self.wfile.write(resp.content)
                except OSError:  # the server that asked is gone
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def _wait(what: str, check: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _phone(srv: Server, phone: str) -> list[dict]:
    chat = httpx.get(f"{srv.url}/simulator/api/demo/messages", params={"phone": phone})
    return [m for m in chat.json() if m["direction"] == "out"]


def _journey(srv: Server, provider_id: str) -> list[str]:
    (msg_id,) = _rows(srv, "SELECT id FROM messages WHERE provider_message_id=?", provider_id)[0]
    steps = httpx.get(f"{srv.url}/api/messages/{msg_id}", headers=ADMIN).json()["journey"]
    return [s["event"] for s in steps]


def _write(srv: Server, phone: str, text: str) -> str:
    sent = httpx.post(f"{srv.url}/simulator/api/demo/messages",
                      json={"phone": phone, "name": "Cliente", "text": text})
    assert sent.status_code == 200 and sent.json()["webhook_status"] == 200, sent.text
    return str(sent.json()["id"])


def _answered_once(srv: Server, phone: str, provider_id: str, replies: int) -> None:
    """The phone shows ``replies`` replies, and the message's own reply is recorded as sent:
    past that point a second reply to it would already be on the phone."""
    def done() -> bool:
        rows = _rows(srv, "SELECT o.status FROM messages m JOIN messages r ON r.reply_to_id=m.id"
                     " JOIN outbox o ON o.message_id=r.id WHERE m.provider_message_id=?",
                     provider_id)
        return bool(rows) and rows[0][0] == "sent"

    _wait(f"the reply to {provider_id} to be sent", done)
    _wait(f"{replies} replies on the phone", lambda: len(_phone(srv, phone)) >= replies)
    assert len(_phone(srv, phone)) == replies
    (answers,) = _rows(srv, "SELECT count(*) FROM messages WHERE direction='out' AND "
                       "reply_to_id=(SELECT id FROM messages WHERE provider_message_id=?)",
                       provider_id)[0]
    assert answers == 1


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[Server, FakeOpenAI, Relay]]:
    """The product on its embedded defaults; its model and its gateway can be caught mid-way."""
    fake = FakeOpenAI()
    holder: list[Server] = []
    relay = Relay(lambda: holder[0].url)
    models = [{"name": "gpt", "provider": "openai", "model": "gpt-fake", "base_url": fake.url,
               "api_key": "sk-test-secret-1234", "timeout_s": 120, "max_retries": 0}]
    env = server_env(tmp_path, ATENDE_MODELS=json.dumps(models), ATENDE_LLM_DEFAULT="gpt",
                     ATENDE_PUBLIC_URL=relay.url)
    import subprocess

    subprocess.run([*ATENDE, "kb", "ingest", str(DEMO_DOCS)], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    srv = Server(tmp_path, env, f"sqlite:///{tmp_path / 'atende.db'}")
    holder.append(srv)
    srv.start()
    yield srv, fake, relay
    relay.release.set()
    srv.stop()
    relay.httpd.shutdown()
    fake.close()


def _kill_and_restart(srv: Server) -> None:
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(10)
    srv.start()


@pytest.mark.parametrize("point", ["debounce", "model", "send"])
def test_a_kill_mid_turn_costs_the_customer_nothing(shop, point: str) -> None:
    srv, fake, relay = shop
    phone = f"55119{ {'debounce': 1, 'model': 2, 'send': 3}[point] }0000001"
    if point == "debounce":
        srv.stop()
        srv.env["ATENDE_TURN_DEBOUNCE_SECONDS"] = "60"  # the kill lands inside the wait
        srv.start()
    if point == "model":
        fake.script.append(("hold", relay.release))
    if point == "send":
        relay.hold_sends = True

    first = _write(srv, phone, QUESTION)
    if point == "debounce":
        _wait("the message to be stored", lambda: "received" in _journey(srv, first))
        srv.env["ATENDE_TURN_DEBOUNCE_SECONDS"] = "0.3"
    elif point == "model":
        _wait("the model to be asked", fake.held.is_set)
        assert "turn_started" in _journey(srv, first)
    else:
        _wait("the send to reach the gateway", relay.forwarded.is_set)
        relay.hold_sends = False
        assert len(_phone(srv, phone)) == 1  # on the phone, unknown to the server
    _kill_and_restart(srv)

    _answered_once(srv, phone, first, replies=1)
    steps = _journey(srv, first)
    if point == "model":  # the turn cut off is redone after the restart
        assert "requeued" in steps and steps.count("turn_started") == 2, steps
        assert len(fake.requests) == 2  # the cut-off ask, and the redone one
    else:  # taken once: before the kill it had not started, or it had finished
        assert steps.count("turn_started") == 1, steps
    # The conversation lives on: the next message is answered, once.
    second = _write(srv, phone, "qto custa a entrega expressa")
    _answered_once(srv, phone, second, replies=2)


ORDER_FLOW = """\
id: rastreio
start: numero
nodes:
  numero:
    kind: question
    text: "Qual o número do pedido?"
    save_as: vars.pedido
    validate: number
    next: consulta
    on_fail: fim
  consulta:
    kind: http
    url: "API/orders/{{vars.pedido}}"
    timeout: 60
    save: {vars.status: status}
    next: fim
    on_error: fim
  fim:
    kind: end
    text: "Pedido {{vars.pedido}}: {{vars.status}}."
"""


class OrdersApi:
    """An outside API whose first answer never comes (the server is killed waiting for it)."""

    def __init__(self) -> None:
        api = self
        self.asked = threading.Event()
        self.calls = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                api.calls += 1
                if api.calls == 1:
                    api.asked.set()
                    time.sleep(30)  # the server asking is killed meanwhile
                body = json.dumps({"status": "em separação"}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_a_kill_while_a_flow_waits_on_an_outside_api_costs_nothing(shop) -> None:
    """The flow's request is kept on the session: the restarted server makes it again and the
    customer gets its answer once (the outside API is asked twice: at least once, as any
    request to it that was cut off)."""
    srv, _, _ = shop
    api = OrdersApi()
    flow = ORDER_FLOW.replace("API", api.url).encode()
    assert httpx.post(f"{srv.url}/api/flows/import", content=flow, headers={
        **ADMIN, "Content-Type": "application/yaml"}).status_code == 201
    assert httpx.patch(f"{srv.url}/api/instances/demo", json={"default_flow": "rastreio"},
                       headers=ADMIN).status_code == 200
    phone = "5511940000001"
    _write(srv, phone, "oi")
    _wait("the question", lambda: len(_phone(srv, phone)) == 1)
    order = _write(srv, phone, "123")
    _wait("the outside API to be asked", api.asked.is_set)
    _kill_and_restart(srv)

    _answered_once(srv, phone, order, replies=2)
    assert _phone(srv, phone)[-1]["text"] == "Pedido 123: em separação."
    assert api.calls == 2
    steps = _journey(srv, order)
    assert "requeued" in steps and steps.count("turn_started") == 2, steps
    api.httpd.shutdown()


@pytest.mark.parametrize("point", ["send", "before"])
def test_a_kill_around_a_scheduled_send_sends_it_once(shop, point: str) -> None:
    """Killed while the scheduled message is on its way to the phone (the gateway's answer
    held), or before its time: after the restart the phone has it exactly once."""
    from datetime import UTC, datetime, timedelta

    srv, _, relay = shop
    phone = f"551194000001{ {'send': 1, 'before': 2}[point] }"
    _write(srv, phone, "oi")
    _wait("the reply to 'oi'", lambda: len(_phone(srv, phone)) == 1)
    (conv_id,), = _rows(srv, "SELECT id FROM conversations WHERE address=?", phone)
    text = "Lembrete: sua consulta é amanhã às 10h."
    delay = 3 if point == "send" else 20
    made = httpx.post(f"{srv.url}/api/conversations/{conv_id}/scheduled", headers=ADMIN,
                      json={"text": text, "send_at": (datetime.now(UTC) + timedelta(
                          seconds=delay)).isoformat()})
    assert made.status_code == 201, made.text
    if point == "send":
        relay.hold_sends = True
        _wait("the scheduled send to reach the gateway", relay.forwarded.is_set)
        relay.hold_sends = False
        assert [m["text"] for m in _phone(srv, phone)].count(text) == 1  # on the phone already
    _kill_and_restart(srv)
    _wait("the scheduled message to be recorded as sent", lambda: _rows(
        srv, "SELECT o.status FROM outbox o JOIN messages m ON m.id=o.message_id WHERE "
        "m.conversation_id=? AND m.author='system' AND m.text=?", conv_id, text) == [("sent",)],
        timeout=120)
    time.sleep(2)  # a second send, if any, would land by now
    assert [m["text"] for m in _phone(srv, phone)].count(text) == 1
    listed = httpx.get(f"{srv.url}/api/scheduled", headers=ADMIN,
                       params={"conversation_id": conv_id}).json()
    assert [(r["status"], r["sent"]) for r in listed] == [("done", 1)]
