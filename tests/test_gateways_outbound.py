"""End to end: what leaves through the real gateways (Evolution, WAHA, Cloud API), whether a
number is really linked, messages the webhooks lost, and that no credential ever comes back.

Each test runs a real server (the session ``server``, or one of its own where a setting must
differ) with instances created through the admin API, pointing at the local fakes that speak
each gateway's wire format. Failures are queued at the fakes; nothing of ours is patched.
"""

from __future__ import annotations

import base64
import itertools
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server.db import sessions_for
from server.engine import replies
from server.schema import Conversation, Instance, Message, Outbox
from server.services import contacts, instances, outbox, sendslots
from tests.conftest import ATENDE, DEMO_DOCS, ROOT, Server, fresh_database, server_env
from tests.gateways import fake_cloud as fc
from tests.gateways import fake_evolution as fe
from tests.gateways import fake_waha as fw
from tests.gateways.fakehttp import FakeHTTP, Reply, Request

ADMIN = {"Authorization": "Bearer test-admin-token"}
PNG = fw.PNG_1PX
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
OGG = b"OggS\x00\x02" + b"\x00" * 22 + b"\x01\x13OpusHead" + b"\x00" * 40
PROVIDERS = ("evolution", "waha", "cloud")
SEND_PATH = {"evolution": r"/message/send", "waha": r"/api/send", "cloud": r"/messages$"}
_numbers = itertools.count(1)


def wait_for(what: Callable[[], Any], timeout: float = 30.0, every: float = 0.2,
             why: str = "condition") -> Any:
    """Poll until ``what()`` is truthy; its value, or an AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {why}")
        time.sleep(every)


def ago(**kw: float) -> int:
    return int((datetime.now(UTC) - timedelta(**kw)).timestamp())


class Api:
    """The admin API of one server; every response body is kept (the secrets test reads them)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, headers=ADMIN, timeout=30)
        self.bodies: list[tuple[str, str]] = []  # (what, body)

    def __call__(self, method: str, path: str, **kw: Any) -> httpx.Response:
        r = self.http.request(method, path, **kw)
        self.bodies.append((f"{method} {path} -> {r.status_code}", r.text))
        return r


@dataclass
class Gw:
    """One number: the fake gateway, its instance on the server, and a customer on it."""

    provider: str
    fake: Any
    http: FakeHTTP
    name: str
    secret: str  # what authenticates its webhooks
    customer: str
    api: Api
    db: sessionmaker[Session]
    created: dict[str, Any]

    def inbound(self, id: str, text: str, ts: int, **kw: Any) -> httpx.Response:
        """The customer writes (a webhook as the gateway posts it)."""
        path, params, headers = f"/webhooks/{self.provider}/{self.name}", {}, {}
        if self.provider == "evolution":
            body = fe.message(id, self.customer, text, instance=self.fake.instance,
                              timestamp=ts, **kw)
            params = fe.query(self.secret)
        elif self.provider == "waha":
            body = fw.message(id, self.customer, text, session=self.fake.session,
                              timestamp=ts, **kw)
            headers = fw.headers(body, self.secret)
        else:
            body = fc.message(id, self.customer, text, timestamp=ts,
                              phone_number_id=self.fake.phone_number_id, **kw)
            headers = {**fc.headers(body, self.secret), "Content-Type": "application/json"}
        r = self.api("POST", path, content=body, params=params, headers=headers)
        assert r.status_code == 200, r.text
        return r

    def conversation(self) -> int:
        with self.db() as s:
            conv = s.scalars(select(Conversation).join(
                Instance, Instance.id == Conversation.instance_id)
                .where(Instance.name == self.name)).one()
            return conv.id

    def sends(self) -> list[Request]:
        return [r for r in self.http.requests if re.search(
            SEND_PATH[self.provider], r.path) and r.method == "POST"]

    def send(self, conv: int, text: str = "", file: tuple[str, bytes, str] | None = None
             ) -> int:
        """An agent's message; returns its outbox id."""
        r = self.api("POST", f"/api/conversations/{conv}/messages", data={"text": text},
                     files={"file": file} if file else None)
        assert r.status_code == 202, r.text
        return int(r.json()["outbox_id"])

    def message_of(self, box: int) -> int:
        with self.db() as s:
            return s.get_one(Outbox, box).message_id

    def box(self, box: int) -> Outbox:
        with self.db() as s:
            row = s.get_one(Outbox, box)
            s.expunge(row)
            return row

    def journey(self, message_id: int) -> list[dict[str, Any]]:
        r = self.api("GET", f"/api/messages/{message_id}")
        assert r.status_code == 200, r.text
        return list(r.json()["journey"])

    def instance(self) -> dict[str, Any]:
        r = self.api("GET", f"/api/instances/{self.name}")
        assert r.status_code == 200, r.text
        return dict(r.json())


class Numbers:
    """Makes numbers on a server, each with its own fake; stops the fakes at the end."""

    def __init__(self, url: str, db_url: str, stack: ExitStack) -> None:
        self.api, self.db, self.stack = Api(url), sessions_for(db_url), stack

    def make(self, provider: str, *, api_key: str | None = None, secret: str | None = None,
             verify_token: str | None = None, **fields: Any) -> Gw:
        n = next(_numbers)
        name = f"{provider[:4]}-{n}-{secrets.token_hex(3)}"
        key = api_key or f"key-{secrets.token_hex(6)}"
        body: dict[str, Any] = {"name": name, "provider": provider, "api_key": key,
                                "ai_enabled": False, "send_interval_s": 0, **fields}
        fake: Any
        if provider == "evolution":
            http = self.stack.enter_context(FakeHTTP())
            fake = fe.FakeEvolution(http, instance=f"inst-{n}", api_key=key)
            body.update(api_url=http.url, options={"instance": fake.instance})
            customer = f"55119{n:08d}"
        elif provider == "waha":
            fake = self.stack.enter_context(fw.FakeWaha(api_key=key, session=f"sess-{n}"))
            http = fake.http
            body.update(api_url=fake.url, options={"session": fake.session},
                        webhook_secret=secret or f"hmac-{secrets.token_hex(8)}")
            customer = f"55118{n:08d}"
        else:
            http = self.stack.enter_context(FakeHTTP())
            fake = fc.FakeCloud(http, token=key, phone_number_id=f"1065{n:08d}")
            body.update(api_url=http.url, options={"phone_number_id": fake.phone_number_id},
                        webhook_secret=secret or f"app-{secrets.token_hex(8)}",
                        verify_token=verify_token or f"vt-{secrets.token_hex(4)}")
            customer = f"55117{n:08d}"
        r = self.api("POST", "/api/instances", json=body)
        assert r.status_code == 201, r.text
        made = r.json()
        webhook_secret = made["webhook_secret"] or body["webhook_secret"]
        return Gw(provider, fake, http, name, webhook_secret, customer, self.api, self.db, made)


@pytest.fixture
def numbers(server: Server) -> Iterator[Numbers]:
    with ExitStack() as stack:
        yield Numbers(server.url, server.db_url, stack)


def steps(journey: list[dict[str, Any]], *events: str) -> list[str]:
    return [s["event"] for s in journey if s["event"] in events]


# 1-3: retries, dead letters, what is not retried -----------------------------------------------

def test_a_send_failing_twice_with_500_is_delivered_once(numbers: Numbers) -> None:
    gw = numbers.make("evolution")
    gw.inbound("IN-1", "meu pedido?", ago(minutes=20))
    gw.http.fail(500, 500, path="sendText")
    box = gw.send(gw.conversation(), "Seu pedido saiu para entrega.")
    msg = gw.message_of(box)
    wait_for(lambda: gw.box(box).status == "sent", 40, why="the third try to go through")
    assert [s.text for s in gw.fake.sent] == ["Seu pedido saiu para entrega."]
    assert len(gw.sends()) == 3
    journey = gw.journey(msg)
    assert steps(journey, "send_error", "sent", "failed") == ["send_error", "send_error", "sent"]
    assert all("500" in s["detail"]["error"] for s in journey if s["event"] == "send_error")


def test_a_400_is_not_retried_becomes_a_dead_letter_and_replays(numbers: Numbers) -> None:
    gw = numbers.make("waha")
    gw.inbound("IN-2", "oi", ago(minutes=20))
    gw.http.fail(Reply(400, {"statusCode": 400, "error": "Bad Request",
                             "message": "chatId is not on WhatsApp"}), path="/api/sendText")
    box = gw.send(gw.conversation(), "Olá! Como posso ajudar?")
    msg = gw.message_of(box)

    def listed() -> list[dict[str, Any]]:
        r = gw.api("GET", "/api/outbox/failed", params={"instance": gw.name})
        assert r.status_code == 200
        return [d for d in r.json() if d["id"] == box]

    dead = wait_for(listed, 20, why="the dead letter")[0]
    assert dead["error"] and "400" in dead["error"] and "not on WhatsApp" in dead["error"]
    assert dead["attempts"] == 1 and dead["message_id"] == msg and dead["instance"] == gw.name
    assert len(gw.sends()) == 1 and gw.fake.sent == []
    assert gw.api("POST", "/api/outbox/999999999/replay").status_code == 404

    r = gw.api("POST", f"/api/outbox/{box}/replay")  # the fault was one answer: it is gone
    assert r.status_code == 202 and r.json() == {"outbox_id": box}
    wait_for(lambda: gw.box(box).status == "sent", 20, why="the replayed send")
    assert [s.text for s in gw.fake.sent] == ["Olá! Como posso ajudar?"]
    assert steps(gw.journey(msg), "failed", "replayed", "sent") == ["failed", "replayed", "sent"]
    assert not listed()


@pytest.fixture
def evo_number(sessions: sessionmaker[Session]) -> Iterator[tuple[fe.FakeEvolution, int]]:
    with FakeHTTP() as http:
        fake = fe.FakeEvolution(http)
        made = instances.create(sessions, {
            "name": "evo-svc", "provider": "evolution", "api_url": http.url,
            "api_key": fe.API_KEY, "options": {"instance": fe.INSTANCE}, "send_interval_s": 0.0})
        yield fake, made.instance.id


def _reply(sessions: sessionmaker[Session], instance_id: int, number: str) -> int:
    contact = contacts.resolve(sessions, phone=number, lid=None, name="Ana")
    conv = contacts.conversation_for(sessions, contact, instance_id, number)
    with sessions.begin() as s:
        _, box = replies.write(s, instance_id=instance_id, conversation_id=conv, text="Olá",
                               author="agent")
        return box.id


def test_429_waits_what_retry_after_says_401_and_404_are_not_retried(
        sessions: sessionmaker[Session], evo_number: tuple[fe.FakeEvolution, int],
        tmp_path: Path) -> None:
    fake, inst = evo_number
    with httpx.Client(timeout=5) as http:
        box = _reply(sessions, inst, "5511900000001")
        fake.http.fail(Reply(429, {"status": 429, "error": "Too Many Requests",
                                   "response": {"message": "rate-overlimit"}},
                             {"Retry-After": "7"}), path="sendText")
        with pytest.raises(outbox.RetryLater) as later:
            outbox.deliver(http, sessions, box, max_attempts=8, data_dir=tmp_path)
        assert later.value.after == 7.0
        with sessions() as s:
            assert s.get_one(Outbox, box).status == "pending"
        assert outbox.deliver(http, sessions, box, max_attempts=8, data_dir=tmp_path) == "sent"

        for status, number in ((401, "5511900000002"), (404, "5511900000003")):
            box = _reply(sessions, inst, number)
            before = len(fake.http.requests)
            fake.http.fail(status, path="sendText")
            assert outbox.deliver(http, sessions, box, max_attempts=8,
                                  data_dir=tmp_path) == "failed"
            assert len(fake.http.requests) == before + 1
            with sessions() as s:
                row = s.get_one(Outbox, box)
                assert row.status == "failed" and row.attempts == 1
                assert str(status) in (row.last_error or "")
    assert [s.to for s in fake.sent] == ["5511900000001"]


# 4-6: what agents send, the Cloud window, long texts -----------------------------------------

FILES = [("", ("foto.png", PNG, "image/png"), "veja a foto"),
         ("", ("nota.pdf", PDF, "application/pdf"), "sua nota fiscal"),
         ("", ("voz.ogg", OGG, "audio/ogg"), "")]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_agents_send_text_image_document_and_voice(numbers: Numbers, provider: str) -> None:
    gw = numbers.make(provider)
    gw.inbound(f"IN-4-{provider}", "pode mandar a nota?", ago(minutes=20))
    conv = gw.conversation()
    with gw.db() as s:
        assert s.get_one(Conversation, conv).mode == "ai"
    boxes = [gw.send(conv, "Segue tudo abaixo.")]
    for _, file, caption in FILES:
        boxes.append(gw.send(conv, caption, file))
    wait_for(lambda: all(gw.box(b).status == "sent" for b in boxes), 30, why="the 4 sends")
    sent = gw.fake.sent
    assert [s.kind for s in sent] == ["text", "image", "document", "audio"]
    text, image, doc, voice = sent
    assert text.text == "Segue tudo abaixo."
    assert (image.data, image.mime, image.caption) == (PNG, "image/png", "veja a foto")
    assert (doc.data, doc.mime, doc.filename, doc.caption) == (
        PDF, "application/pdf", "nota.pdf", "sua nota fiscal")
    assert voice.data == OGG and not voice.caption
    paths = [r.path.rsplit("/", 1)[0] if provider == "evolution" else r.path
             for r in gw.sends()]
    if provider == "evolution":
        assert paths == ["/message/sendText", "/message/sendMedia", "/message/sendMedia",
                         "/message/sendWhatsAppAudio"]
        assert image.body["mediatype"] == "image" and doc.body["mediatype"] == "document"
        assert all(s.to == fe.jid_of(gw.customer) or s.to == gw.customer for s in sent)
    elif provider == "waha":
        assert paths == ["/api/sendText", "/api/sendImage", "/api/sendFile", "/api/sendVoice"]
        assert voice.mime == "audio/ogg" and voice.convert is False
        assert {s.to for s in sent} == {f"{gw.customer}@c.us"}
    else:
        assert [p.rsplit("/", 1)[1] for p in paths] == ["messages"] * 4
        assert voice.mime == "audio/ogg" and {s.to for s in sent} == {gw.customer}
        assert len([r for r in gw.http.requests if r.path.endswith("/media")]) == 3
    with gw.db() as s:
        assert s.get_one(Conversation, conv).mode == "human"  # the bot is paused


def test_cloud_refuses_free_text_outside_24_hours_and_sends_a_template(
        numbers: Numbers) -> None:
    gw = numbers.make("cloud")
    gw.inbound("wamid.OLD", "oi", ago(hours=25))
    conv = gw.conversation()
    box = gw.send(conv, "Ainda precisa de ajuda?")
    msg = gw.message_of(box)
    wait_for(lambda: gw.box(box).status == "failed", 20, why="the refusal")
    assert gw.sends() == [] and gw.fake.sent == []
    r = gw.api("GET", f"/api/messages/{msg}")
    assert r.json()["status"] == "failed"
    failed = [s for s in r.json()["journey"] if s["event"] == "failed"]
    assert len(failed) == 1 and "131047" in failed[0]["detail"]["reason"]

    r = gw.api("POST", f"/api/conversations/{conv}/template",
               json={"name": "pedido_atualizado", "language": "pt_BR"})
    assert r.status_code == 202, r.text
    wait_for(lambda: gw.box(r.json()["outbox_id"]).status == "sent", 20, why="the template")
    assert [s.kind for s in gw.fake.sent] == ["template"]
    template = gw.fake.sent[0].body["template"]
    assert template["name"] == "pedido_atualizado"
    assert template["language"] in ("pt_BR", {"code": "pt_BR"})


def long_text(size: int) -> str:
    out: list[str] = []
    i = 0
    while sum(len(x) + 1 for x in out) < size:
        i += 1
        out.append(f"Frase {i:04d} sobre a entrega do seu pedido na loja Aurora.")
    return " ".join(out)


def test_split_cuts_long_text_at_sentence_ends() -> None:
    text = long_text(10_000)
    assert len(text) >= 10_000
    parts = replies.split(text)
    assert len(parts) == 3
    assert all(len(p) <= replies.MAX_TEXT for p in parts)
    assert all(p.endswith("Aurora.") for p in parts)
    assert " ".join(parts) == text


def test_a_long_agent_message_goes_out_in_parts_in_order(numbers: Numbers) -> None:
    gw = numbers.make("evolution")
    gw.inbound("IN-6", "me conta tudo", ago(minutes=20))
    text = long_text(9_000)
    gw.send(gw.conversation(), text)
    parts = replies.split(text)
    wait_for(lambda: len(gw.fake.sent) >= len(parts), 30, why="every part")

    def unsent() -> int:  # the last part's "sent" is recorded just after the gateway answers
        with gw.db() as s:
            return int(s.scalar(select(func.count()).select_from(Outbox).join(
                Message, Message.id == Outbox.message_id).where(
                Message.conversation_id == gw.conversation(), Outbox.status != "sent")) or 0)

    wait_for(lambda: unsent() == 0, 10, why="every part recorded as sent")
    assert [s.text for s in gw.fake.sent] == parts


# 7: per-number pace ---------------------------------------------------------------------------

def test_send_slots_are_distinct_paced_and_capped(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        a = Instance(name="pace-a", provider="evolution", webhook_secret="s" * 32,
                     send_interval_s=1.0, daily_cap=1000)
        b = Instance(name="pace-b", provider="evolution", webhook_secret="t" * 32,
                     send_interval_s=1.0, daily_cap=3)
        s.add_all([a, b])
        s.flush()
        ids = a.id, b.id
    now = time.time()
    slots: list[float] = []
    errors: list[BaseException] = []
    start = threading.Barrier(20)

    def take() -> None:
        start.wait()
        try:
            slots.append(sendslots.reserve(sessions, ids[0], now))
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=take) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(slots)) == 20
    ordered = sorted(slots)
    assert ordered[0] == pytest.approx(now)
    gaps = [y - x for x, y in itertools.pairwise(ordered)]
    assert all(0.5 - 1e-6 <= g <= 1.5 + 1e-6 for g in gaps), gaps

    capped = [sendslots.reserve(sessions, ids[1], now) for _ in range(3)]
    assert capped[0] == pytest.approx(now)  # independent of the other number's 20 slots
    with pytest.raises(sendslots.CapReached) as cap:
        sendslots.reserve(sessions, ids[1], now)
    assert 0 < cap.value.after <= 86_400


def test_sends_on_one_number_keep_its_pace(numbers: Numbers) -> None:
    gw = numbers.make("waha", send_interval_s=0.5)
    gw.inbound("IN-7", "oi", ago(minutes=20))
    at: list[float] = []
    answer = gw.http.answer

    def timed(req: Request) -> Reply:
        if "/api/send" in req.path:
            at.append(time.monotonic())
        return answer(req)

    gw.http.answer = timed  # type: ignore[method-assign]  # the fake's, not ours
    conv = gw.conversation()
    boxes = [gw.send(conv, f"mensagem {i}") for i in range(5)]
    wait_for(lambda: all(gw.box(b).status == "sent" for b in boxes), 30, why="5 sends")
    assert [s.text for s in gw.fake.sent] == [f"mensagem {i}" for i in range(5)]
    gaps = [y - x for x, y in itertools.pairwise(at)]
    assert len(gaps) == 4 and min(gaps) >= 0.22, gaps


# 8-10: a server of our own: connection checks each second, reconciliation each 2 s, DEBUG log -

@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("own")
    with fresh_database("sqlite", data) as url:
        env = server_env(data, ATENDE_DATABASE_URL=url, ATENDE_GATEWAY_CHECK_SECONDS="1",
                         ATENDE_RECONCILE_SECONDS="2", ATENDE_LOG_LEVEL="DEBUG")
        subprocess.run([*ATENDE, "kb", "ingest", str(DEMO_DOCS)], env=env, cwd=ROOT,
                       check=True, capture_output=True)
        srv = Server(data, env, url)
        srv.start()
        yield srv
        srv.stop()


@pytest.fixture
def own_numbers(own: Server) -> Iterator[Numbers]:
    with ExitStack() as stack:
        yield Numbers(own.url, own.db_url, stack)


DEAD = {"evolution": ("close", "open"), "waha": ("FAILED", "WORKING")}


@pytest.mark.parametrize("provider", ["evolution", "waha"])
def test_a_dead_socket_is_seen_without_any_event_and_replies_wait(
        own_numbers: Numbers, provider: str) -> None:
    gw = own_numbers.make(provider)
    wait_for(lambda: gw.instance()["connection"]["state"] == "connected", 20,
             why="the first check")
    gw.inbound(f"IN-8-{provider}", "oi", ago(minutes=20))
    dead, alive = DEAD[provider]

    def set_state(state: str) -> None:
        if provider == "evolution":
            gw.fake.state = state
        else:
            gw.fake.status = state

    set_state(dead)  # the socket died; the gateway posts nothing
    started = time.monotonic()
    info = wait_for(lambda: (i := gw.instance())["connection"]["state"] == "disconnected"
                    and i, 59, why="the check to see the dead socket")
    assert time.monotonic() - started < 60
    assert info["alert"] and "not connected" in info["alert"]
    health = gw.api("GET", f"/api/instances/{gw.name}/health").json()
    assert health["state"] == "disconnected" and health["alert"]

    box = gw.send(gw.conversation(), "Já verifico para você.")
    msg = gw.message_of(box)
    wait_for(lambda: "waiting" in steps(gw.journey(msg), "waiting"), 20, why="the wait")
    assert gw.sends() == [] and gw.box(box).status == "pending"

    set_state(alive)
    wait_for(lambda: gw.box(box).status == "sent", 30, why="the send once linked again")
    assert [s.text for s in gw.fake.sent] == ["Já verifico para você."]
    assert gw.instance()["connection"]["state"] == "connected"
    assert gw.instance()["alert"] is None

    if provider == "evolution":
        gw.fake.qr_base64 = "data:image/png;base64," + base64.b64encode(PNG).decode()
        set_state("connecting")
        want = gw.fake.qr_base64
    else:
        set_state("SCAN_QR_CODE")
        want = gw.fake.qr_value
    r = gw.api("GET", f"/api/instances/{gw.name}/qr")
    assert r.status_code == 200 and r.json() == {"qr": want}
    info = wait_for(lambda: (i := gw.instance())["connection"]["state"] == "pairing" and i, 20,
                    why="pairing")
    assert "QR" in info["alert"]


def test_cloud_has_no_qr(own_numbers: Numbers) -> None:
    gw = own_numbers.make("cloud")
    assert gw.api("GET", f"/api/instances/{gw.name}/qr").status_code == 409
    assert gw.api("GET", "/api/instances/no-such-number/qr").status_code == 404
    r = gw.api("POST", f"/api/instances/{gw.name}/check")
    assert r.status_code == 200 and r.json()["state"] == "connected"


@pytest.mark.parametrize("provider", ["evolution", "waha"])
def test_reconciliation_stores_a_lost_message_once_and_answers_it_once(
        own_numbers: Numbers, provider: str) -> None:
    gw = own_numbers.make(provider, ai_enabled=True)
    gw.inbound(f"IN-9-{provider}", "oi, bom dia", ago(hours=1))  # stale: stored, not answered
    lost = f"LOST{secrets.token_hex(4).upper()}"
    text = "Quais são as formas de pagamento?"
    if provider == "evolution":
        gw.fake.keep(fe.message_data(lost, gw.customer, text))
        wanted = lost
    else:
        payload = fw.message_payload(lost, gw.customer, text)
        gw.fake.keep(f"{gw.customer}@c.us", payload)
        wanted = payload["id"]

    def stored() -> list[Message]:
        with gw.db() as s:
            rows = list(s.scalars(select(Message).where(Message.provider_message_id == wanted)))
            for m in rows:
                s.expunge(m)
            return rows

    found = wait_for(stored, 30, why="reconciliation to find the lost message")
    assert len(found) == 1 and found[0].via == "reconciliation"
    received = [s for s in gw.journey(found[0].id) if s["event"] == "received"]
    assert received and received[0]["detail"]["found_by"] == "reconciliation"
    health = gw.api("GET", f"/api/instances/{gw.name}/health").json()
    assert health["reconciled"] == 1

    wait_for(lambda: gw.fake.sent, 90, why="the answer")
    # Found again on a later pass: a no-op recorded as such, not a second message.
    wait_for(lambda: "duplicate" in steps(gw.journey(found[0].id), "duplicate"), 30,
             why="a later pass")
    assert len(stored()) == 1
    assert gw.api("GET", f"/api/instances/{gw.name}/health").json()["reconciled"] == 1
    assert len(gw.fake.sent) == 1  # answered once
    with gw.db() as s:
        replies_ = s.scalar(select(func.count()).select_from(Message).where(
            Message.reply_to_id == found[0].id))
    assert replies_ == 1


SECRET = {
    "evo_key": "SECRET-api-key-7f3a-evo",
    "evo_key2": "SECRET-api-key-9c1d-evo-new",
    "waha_key": "SECRET-api-key-7f3a-waha",
    "waha_hmac": "SECRET-webhook-secret-7f3a-waha",
    "cloud_token": "SECRET-api-key-7f3a-cloud",
    "cloud_app": "SECRET-webhook-secret-7f3a-cloud",
    "cloud_verify": "SECRET-verify-token-7f3a-cloud",
}


def test_no_secret_ever_comes_back(own: Server, own_numbers: Numbers) -> None:
    api = own_numbers.api
    first = len(api.bodies)
    evo = own_numbers.make("evolution", api_key=SECRET["evo_key"])
    waha = own_numbers.make("waha", api_key=SECRET["waha_key"], secret=SECRET["waha_hmac"])
    cloud = own_numbers.make("cloud", api_key=SECRET["cloud_token"], secret=SECRET["cloud_app"],
                             verify_token=SECRET["cloud_verify"])
    evo_token = evo.secret
    assert evo.created["webhook_secret"] == evo_token and evo_token in evo.created["webhook_url"]
    created = api.bodies[first]  # the one response allowed to show Evolution's token
    assert evo_token in created[1]
    gws = (evo, waha, cloud)

    # every route of /api/instances*, and the server's own health
    api("GET", "/health")
    api("GET", "/api/instances")
    for gw in gws:
        gw.instance()
        api("GET", f"/api/instances/{gw.name}/health")
        api("POST", f"/api/instances/{gw.name}/check")
        api("GET", f"/api/instances/{gw.name}/qr")
        api("GET", f"/api/instances/{gw.name}/unsupported")
        assert api("PATCH", f"/api/instances/{gw.name}", json={"daily_cap": 500}).status_code \
            == 200
    assert api("POST", "/api/instances", json={
        "name": evo.name, "provider": "evolution", "api_url": evo.http.url,
        "api_key": SECRET["evo_key"]}).status_code == 409
    assert api("POST", "/api/instances", json={
        "name": "bad-cloud", "provider": "cloud", "api_key": SECRET["cloud_token"],
        "verify_token": SECRET["cloud_verify"]}).status_code == 400
    evo.fake.state, evo.fake.qr_code = "connecting", "2@pairing-code-text"
    assert api("GET", f"/api/instances/{evo.name}/qr").json() == {"qr": "2@pairing-code-text"}
    evo.fake.state = "open"

    # webhooks, bad and good
    for gw in gws:
        gw.inbound(f"IN-10-{gw.provider}", "oi", ago(minutes=20))
    bad = fe.message("BAD1", evo.customer, "x", instance=evo.fake.instance)
    assert api("POST", f"/webhooks/evolution/{evo.name}", content=bad,
               params={"token": "wrong-token"}).status_code == 401
    assert api("POST", f"/webhooks/evolution/{evo.name}", content=bad).status_code == 401
    bad = fw.message("BAD2", waha.customer, "x", session=waha.fake.session)
    assert api("POST", f"/webhooks/waha/{waha.name}", content=bad,
               headers=fw.headers(bad, "not-the-key")).status_code == 401
    bad = fc.message("BAD3", cloud.customer, "x", phone_number_id=cloud.fake.phone_number_id)
    assert api("POST", f"/webhooks/cloud/{cloud.name}", content=bad,
               headers=fc.headers(bad, "not-the-secret")).status_code == 401
    hub = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    assert api("GET", f"/webhooks/cloud/{cloud.name}",
               params={**hub, "hub.verify_token": "wrong"}).status_code == 401
    r = api("GET", f"/webhooks/cloud/{cloud.name}",
            params={**hub, "hub.verify_token": SECRET["cloud_verify"]})
    assert r.status_code == 200 and r.text == "1158201444"
    assert api("POST", f"/webhooks/waha/{waha.name}", content=b"{not json",
               headers=fw.headers(b"{not json", SECRET["waha_hmac"])).status_code == 400

    # failed sends whose gateway error bodies come back, some echoing what we sent them
    boxes = []
    for gw, key in ((evo, SECRET["evo_key"]), (waha, SECRET["waha_key"]),
                    (cloud, SECRET["cloud_token"])):
        gw.http.fail(Reply(400, {"statusCode": 400, "error": "Bad Request",
                                 "message": f"rejected request with key {key}",
                                 "response": {"message": [f"apikey {key} not allowed"]}}),
                     path=SEND_PATH[gw.provider])
        boxes.append((gw, gw.send(gw.conversation(), "teste")))
        gw.http.fail(Reply(401, {"message": "Unauthorized", "statusCode": 401}),
                     path=SEND_PATH[gw.provider])
        boxes.append((gw, gw.send(gw.conversation(), "outro teste")))
    for gw, box in boxes:
        def failed(gw: Gw = gw, box: int = box) -> bool:
            return gw.box(box).status == "failed"

        wait_for(failed, 30, why="dead letter")
        api("GET", f"/api/messages/{gw.message_of(box)}")
    dead = api("GET", "/api/outbox/failed").json()
    assert {b for _, b in boxes} <= {d["id"] for d in dead}
    assert all(d["error"] for d in dead if d["id"] in {b for _, b in boxes})
    for gw in gws:
        api("GET", "/api/outbox/failed", params={"instance": gw.name})
        api("GET", f"/api/conversations/{gw.conversation()}/messages")
    # connection checks answered with an error body that echoes the key
    waha.http.fail(*[Reply(500, {"message": f"internal error for key {SECRET['waha_key']}"})
                     for _ in range(3)], path="/api/sessions/")
    api("POST", f"/api/instances/{waha.name}/check")
    api("GET", f"/api/instances/{waha.name}")

    # a key changed, a webhook secret rotated (that answer shows the new one), numbers removed
    assert api("PATCH", f"/api/instances/{evo.name}",
               json={"api_key": SECRET["evo_key2"]}).status_code == 200
    evo.fake.api_key = SECRET["evo_key2"]
    api("POST", f"/api/instances/{evo.name}/check")
    rotated = api("POST", f"/api/instances/{waha.name}/webhook-secret")
    assert rotated.status_code == 200 and rotated.json()["webhook_secret"]
    rotated_at = len(api.bodies) - 1
    api("GET", "/api/instances")
    for gw in gws:
        assert api("DELETE", f"/api/instances/{gw.name}").status_code == 204
        assert api("GET", f"/api/instances/{gw.name}").status_code == 404

    log = own.log.read_text(errors="replace")
    assert "DEBUG" in log  # the level asked for, so the log says all it would
    forbidden = [*SECRET.values()]
    for i, (what, body) in enumerate(api.bodies):
        for secret in forbidden:
            assert secret not in body, f"{secret!r} in the response to {what}"
        if i != first:
            assert evo_token not in body, f"Evolution's token in the response to {what}"
        if i != rotated_at:
            assert rotated.json()["webhook_secret"] not in body, what
    for n, line in enumerate(log.splitlines(), 1):
        for secret in [*forbidden, evo_token, rotated.json()["webhook_secret"]]:
            assert secret not in line, f"{secret!r} in server.log line {n}: {line[:300]}"
