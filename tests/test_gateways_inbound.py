"""Inbound through real gateways' webhooks, end to end: a running server (SQLite and PostgreSQL),
numbers created through the admin API, each pointing at a fake gateway that speaks the real
wire format (Evolution, WAHA, Cloud). What a customer relies on: every message stored once and
answered once, whatever the gateway retries; forged webhooks refused; nothing unreadable lost;
the bot quiet where a human answers, in groups and on history; files kept and checked; and
delivery statuses moving forward.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import text

from server.db import make_engine
from tests.conftest import Server
from tests.gateways import fake_cloud as fc
from tests.gateways import fake_evolution as fe
from tests.gateways import fake_waha as fw
from tests.gateways.fakehttp import FakeHTTP
from tests.test_message_path import ADMIN, _rows, _wait

PROVIDERS = ["evolution", "waha", "cloud"]
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n"
ELF = Path("/bin/true").read_bytes()  # a real program
QUESTION = "Qual é o horário de atendimento da loja?"
QUIET = 3.0  # seconds to watch for a second reply that must not come


def _phone() -> str:
    """A fresh Brazilian mobile, 13 digits: contacts are shared by every test on the server."""
    return f"55119{secrets.randbelow(10**8):08d}"


def _mid() -> str:
    return f"3EB0{uuid.uuid4().hex[:16].upper()}"


@dataclass
class Number:
    """One number on the server and the fake gateway behind it."""

    server: Server
    provider: str
    name: str
    http: FakeHTTP
    gw: Any  # FakeEvolution, FakeWaha or FakeCloud
    secret: str
    remote: str  # Evolution's instance, WAHA's session or Cloud's phone number id
    verify_token: str = "verify-me-please"
    ids: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.server.url}/webhooks/{self.provider}/{self.name}"

    @property
    def sent(self) -> list[Any]:
        return list(self.gw.sent)

    def post(self, body: bytes, *, sign: bool = True, secret: str | None = None,
             timeout: float = 60) -> httpx.Response:
        """POST a webhook body as the gateway does: Evolution's token in the URL, WAHA's and
        Cloud's signature in a header (``sign=False``: none; ``secret``: another one)."""
        key = secret or self.secret
        params, headers = {}, {"Content-Type": "application/json"}
        if sign and self.provider == "evolution":
            params = fe.query(key)
        elif sign and self.provider == "waha":
            headers |= fw.headers(body, key)
        elif sign:
            headers |= fc.headers(body, key)
        return httpx.post(self.url, content=body, params=params, headers=headers,
                          timeout=timeout)

    # -- webhook bodies of this number ------------------------------------------------------

    def text(self, msg_id: str, phone: str, text: str, *, timestamp: int | None = None) -> bytes:
        now = timestamp or int(time.time())
        if self.provider == "evolution":
            return fe.message(msg_id, phone, text, instance=self.remote, timestamp=now)
        if self.provider == "waha":
            return fw.message(msg_id, phone, text, session=self.remote, timestamp=now)
        return fc.message(msg_id, phone, text, timestamp=now, phone_number_id=self.remote)

    def stored_id(self, msg_id: str, phone: str) -> str:
        """The provider id a customer's text is stored under (WAHA serializes it)."""
        return f"false_{phone}@c.us_{msg_id}" if self.provider == "waha" else msg_id


@pytest.fixture
def numbers(server: Server) -> Iterator[Any]:
    """Make numbers: ``numbers("waha")`` creates one through POST /api/instances, pointing at a
    fresh fake gateway; all are removed and their fakes stopped after the test."""
    made: list[Number] = []

    def make(provider: str) -> Number:
        http = FakeHTTP().start()
        name = f"{provider}-{secrets.token_hex(3)}"
        secret = secrets.token_urlsafe(16)
        body: dict[str, Any] = {"name": name, "provider": provider, "api_url": http.url,
                                "webhook_secret": secret, "send_interval_s": 0}
        gw: Any
        if provider == "evolution":
            remote = f"evo-{secrets.token_hex(3)}"
            gw = fe.FakeEvolution(http, instance=remote)
            body |= {"api_key": fe.API_KEY, "options": {"instance": remote}}
        elif provider == "waha":
            http.stop()
            remote = f"sess{secrets.token_hex(3)}"
            gw = fw.FakeWaha(session=remote).start()
            http = gw.http
            body |= {"api_url": gw.url, "api_key": "waha-key", "options": {"session": remote}}
        else:
            remote = str(10**14 + secrets.randbelow(10**14))
            gw = fc.FakeCloud(http, phone_number_id=remote)
            body |= {"api_key": fc.TOKEN, "verify_token": "verify-me-please",
                     "options": {"phone_number_id": remote}}
        resp = httpx.post(f"{server.url}/api/instances", json=body, headers=ADMIN)
        assert resp.status_code == 201, resp.text
        num = Number(server, provider, name, http, gw, secret, remote)
        made.append(num)
        return num

    yield make
    for num in made:
        httpx.delete(f"{server.url}/api/instances/{num.name}", headers=ADMIN)
        num.http.stop()


def _count(server: Server, table: str, where: str = "", *args: object) -> int:
    return int(_rows(server, f"SELECT count(*) FROM {table} {where}", *args)[0][0])


def _message(server: Server, num: Number, provider_id: str) -> dict[str, Any] | None:
    rows = _rows(server, "SELECT m.id FROM messages m JOIN instances i ON i.id=m.instance_id "
                 "WHERE i.name=? AND m.provider_message_id=?", num.name, provider_id)
    if not rows:
        return None
    assert len(rows) == 1, rows
    got: dict[str, Any] = httpx.get(f"{server.url}/api/messages/{rows[0][0]}",
                                    headers=ADMIN).json()
    return got


def _events(msg: dict[str, Any]) -> list[str]:
    return [step["event"] for step in msg["journey"]]


def _step(msg: dict[str, Any], event: str) -> dict[str, Any]:
    found = [s for s in msg["journey"] if s["event"] == event]
    assert found, f"no {event!r} in {_events(msg)}"
    return found[-1]["detail"] or {}


def _wait_step(server: Server, num: Number, provider_id: str, event: str,
               timeout: float = 60) -> dict[str, Any]:
    def seen() -> dict[str, Any] | None:
        m = _message(server, num, provider_id)
        return m if m is not None and event in _events(m) else None

    return _wait(f"{event} of {provider_id}", seen, timeout)


def _replies_to(num: Number, phone: str) -> list[Any]:
    return [s for s in num.sent if phone in s.to]


def _one_reply(num: Number, phone: str, timeout: float = 120) -> Any:
    """The one reply the customer gets; none comes after it."""
    _wait(f"a reply to {phone} on {num.name}", lambda: _replies_to(num, phone), timeout)
    time.sleep(QUIET)  # a second reply would be on its way by now
    replies = _replies_to(num, phone)
    assert len(replies) == 1, replies
    return replies[0]


def _reply_recorded(server: Server, num: Number, phone: str) -> Any:
    """The one reply (as the gateway got it), once our outbox recorded its id."""
    reply = _one_reply(num, phone)
    _wait("the reply's id recorded", lambda: _message(server, num, reply.id))
    return reply


# -- 1. concurrent retries: one message, one reply ---------------------------------------------

@pytest.mark.parametrize("provider", PROVIDERS)
def test_ten_concurrent_deliveries_store_one_message_and_send_one_reply(
        server: Server, numbers: Any, provider: str) -> None:
    num, other = numbers(provider), numbers(provider)
    phone, msg_id = _phone(), _mid() if provider != "cloud" else f"wamid.{_mid()}"
    body = num.text(msg_id, phone, QUESTION)
    gate = threading.Barrier(10)
    answers: list[httpx.Response | BaseException] = []

    def deliver() -> None:
        try:
            gate.wait()
            answers.append(num.post(body))
        except BaseException as exc:  # checked below
            answers.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(isinstance(a, httpx.Response) and a.status_code == 200 for a in answers), [
        a if not isinstance(a, httpx.Response) else (a.status_code, a.text) for a in answers]
    outcome = [a.json() for a in answers if isinstance(a, httpx.Response)]
    assert sum(o["stored"] for o in outcome) == 1
    assert sum(o["duplicates"] for o in outcome) == 9
    stored = num.stored_id(msg_id, phone)
    assert _message(server, num, stored) is not None  # exactly one row (asserted inside)
    _one_reply(num, phone)
    msg = _message(server, num, stored)
    assert msg is not None and _events(msg).count("received") == 1
    assert _events(msg).count("duplicate") == 9

    # The same id on another number of the same gateway is another message.
    again = other.text(msg_id, phone, QUESTION)
    resp = other.post(again)
    assert resp.status_code == 200 and resp.json()["stored"] == 1
    assert _count(server, "messages", "WHERE provider_message_id=?", stored) == 2
    _one_reply(other, phone)
    assert len(_replies_to(num, phone)) == 1


# -- 2. a delivery that failed half-way is processed when it comes again -----------------------

@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_delivery_that_failed_half_way_is_processed_when_it_comes_again(
        server: Server, numbers: Any, provider: str) -> None:
    if not server.db_url.startswith("postgresql"):
        pytest.skip("the failure is injected with a PostgreSQL trigger (RAISE EXCEPTION); a "
                    "SQLite trigger can only fail an insert with RAISE(ABORT), a constraint "
                    "error that is indistinguishable from a real duplicate delivery")
    num = numbers(provider)
    phone, msg_id = _phone(), _mid() if provider != "cloud" else f"wamid.{_mid()}"
    stored = num.stored_id(msg_id, phone)
    tag = f"atende_test_fail_{secrets.token_hex(4)}"
    dsn = server.db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            f"CREATE FUNCTION {tag}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.provider_message_id = '{stored}' THEN "
            f"RAISE EXCEPTION 'injected: the insert of {stored} fails'; END IF; "
            f"RETURN NEW; END $$")
        conn.execute(f"CREATE TRIGGER {tag} BEFORE INSERT ON messages FOR EACH ROW "
                     f"EXECUTE FUNCTION {tag}()")
        try:
            body = num.text(msg_id, phone, QUESTION)
            first = num.post(body)
            assert first.status_code >= 500, first.text  # the gateway will deliver it again
            assert _message(server, num, stored) is None
        finally:
            conn.execute(f"DROP TRIGGER IF EXISTS {tag} ON messages")
            conn.execute(f"DROP FUNCTION IF EXISTS {tag}()")
    second = num.post(body)
    assert second.status_code == 200 and second.json()["stored"] == 1, second.text
    assert _message(server, num, stored) is not None
    _one_reply(num, phone)
    assert _count(server, "contacts c JOIN contact_identities ci ON ci.contact_id=c.id",
                  "WHERE ci.value=?", phone) == 1


# -- 3. authenticity ---------------------------------------------------------------------------

def _totals(server: Server) -> tuple[int, int, int]:
    return (_count(server, "messages"), _count(server, "contacts"),
            _count(server, "unsupported_payloads"))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_forged_unsigned_and_misaddressed_webhooks_are_refused_and_store_nothing(
        server: Server, numbers: Any, provider: str) -> None:
    num = numbers(provider)
    phone = _phone()
    ids = [_mid() for _ in range(4)]
    if provider == "evolution":
        other_instance = fe.message(ids[3], phone, "oi", instance="someone-else")
    elif provider == "waha":
        other_instance = fw.message(ids[3], phone, "oi", session="someone-else")
    else:
        other_instance = fc.message(ids[3], phone, "oi", timestamp=int(time.time()),
                                    phone_number_id="999999999999999")
    before = _totals(server)
    refused = [
        num.post(num.text(ids[0], phone, "oi"), secret="not-the-secret-at-all"),  # forged
        num.post(num.text(ids[1], phone, "oi"), sign=False),  # unsigned
        num.post(other_instance),  # rightly signed, for another number on the same gateway
    ]
    if provider == "evolution":  # a wrong token, and the event name appended to the URL
        refused.append(httpx.post(num.url, content=num.text(ids[2], phone, "oi"),
                                  params={"token": num.secret + "x"}))
        refused.append(httpx.post(f"{num.url}/messages-upsert",
                                  content=num.text(ids[2], phone, "oi"),
                                  params={"token": "nope/messages-upsert"}))
    else:  # a signature of another body
        refused.append(httpx.post(num.url, content=num.text(ids[2], phone, "oi"), headers=(
            fw.headers(b"{}", num.secret) if provider == "waha" else fc.headers(b"{}",
                                                                               num.secret))))
    assert [r.status_code for r in refused] == [401] * len(refused), [r.text for r in refused]
    assert _totals(server) == before
    assert not _rows(server, "SELECT id FROM contact_identities WHERE value=?", phone)
    health = httpx.get(f"{server.url}/api/instances/{num.name}/health", headers=ADMIN).json()
    assert health["unsupported"] == 0


def test_cloud_webhook_handshake_answers_only_the_right_verify_token(
        server: Server, numbers: Any) -> None:
    num = numbers("cloud")
    params = {"hub.mode": "subscribe", "hub.verify_token": num.verify_token,
              "hub.challenge": "1158201444"}
    ok = httpx.get(num.url, params=params)
    assert ok.status_code == 200 and ok.text == "1158201444"
    wrong = httpx.get(num.url, params={**params, "hub.verify_token": "guess"})
    assert wrong.status_code == 401 and "1158201444" not in wrong.text
    assert httpx.get(num.url, params={"hub.challenge": "1"}).status_code == 401


# -- 4. unknown shapes are kept ----------------------------------------------------------------

@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_unknown_payload_shape_is_kept_whole_and_counted(server: Server, numbers: Any,
                                                            provider: str) -> None:
    num = numbers(provider)
    marker = f"novelty-{secrets.token_hex(4)}"
    if provider == "evolution":
        body = fe.envelope("messages.brand_new", {"what": marker}, instance=num.remote)
    elif provider == "waha":
        body = json.dumps(fw.envelope("message.brand.new", {"what": marker},
                                      session=num.remote)).encode()
    else:
        body = json.dumps(fc.envelope({"what": marker}, field_="brand_new_field",
                                      phone_number_id=num.remote)).encode()
    resp = num.post(body)
    assert resp.status_code == 200, resp.text
    kept = httpx.get(f"{server.url}/api/instances/{num.name}/unsupported", headers=ADMIN).json()
    assert len(kept) == 1 and kept[0]["body"] == body.decode()
    assert kept[0]["reason"]
    health = httpx.get(f"{server.url}/api/instances/{num.name}/health", headers=ADMIN).json()
    assert health["unsupported"] == 1
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_a_message_first_delivered_undecrypted_is_stored_once_its_text_comes(
        server: Server, numbers: Any) -> None:
    """Evolution forwards a message whose content WhatsApp had not decrypted yet, then, after
    the phone's retry, the same id with its text: one message, the text, answered."""
    num = numbers("evolution")
    phone, msg_id = _phone(), _mid()
    stub = fe.message(msg_id, phone, instance=num.remote,
                      message={"messageContextInfo": {"deviceListMetadataVersion": 2}})
    assert num.post(stub).json()["stored"] == 0
    assert num.post(num.text(msg_id, phone, QUESTION)).json()["stored"] == 1
    customer = _message(server, num, msg_id)
    assert customer is not None and customer["text"] == QUESTION and customer["type"] == "text"
    _reply_recorded(server, num, phone)


def test_a_waha_message_first_delivered_undecrypted_is_stored_once_its_text_comes(
        server: Server, numbers: Any) -> None:
    """WAHA (NOWEB) forwards a message Baileys could not decrypt yet (the CIPHERTEXT stub, no
    content), then, after the phone's retry, the same id with its text: one message, the text,
    answered."""
    num = numbers("waha")
    phone, msg_id = _phone(), _mid()
    key = {"remoteJid": f"{phone}@s.whatsapp.net", "fromMe": False, "id": msg_id}
    stub = fw.message(msg_id, phone, session=num.remote, body=None, _data={
        "key": key, "messageStubType": 2, "messageStubParameters": ["No session record"],
        "message": {"messageContextInfo": {"deviceListMetadataVersion": 2}}})
    assert num.post(stub).json()["stored"] == 0
    assert num.post(num.text(msg_id, phone, QUESTION)).json()["stored"] == 1
    customer = _message(server, num, num.stored_id(msg_id, phone))
    assert customer is not None and customer["text"] == QUESTION and customer["type"] == "text"
    _reply_recorded(server, num, phone)


def test_a_kept_body_shows_no_credential_of_the_gateway(server: Server, numbers: Any) -> None:
    """Evolution's envelope carries its API key and our webhook URL with its secret token; a
    body kept for a person to read keeps neither, and all the rest."""
    num = numbers("evolution")
    marker = f"novelty-{secrets.token_hex(4)}"
    envelope = json.loads(fe.envelope("labels.weird", {"what": marker}, instance=num.remote))
    token = num.secret
    destination = str(httpx.URL(num.url, params=fe.query(token)))  # as Evolution was told it
    envelope.update(destination=destination, apikey="evo-global-key-123")
    assert num.post(json.dumps(envelope).encode()).status_code == 200
    kept = httpx.get(f"{server.url}/api/instances/{num.name}/unsupported", headers=ADMIN).json()
    (body,) = [k["body"] for k in kept if marker in k["body"]]
    assert token not in body and "evo-global-key-123" not in body
    stored = json.loads(body)
    assert stored["apikey"] == "[redacted]" and stored["destination"].endswith("token=[redacted]")
    assert stored["data"] == {"what": marker} and stored["event"] == "labels.weird"
    # A body kept before bodies were scrubbed, as it sits in the database: scrubbed on the way out.
    engine = make_engine(server.db_url)
    try:
        with engine.begin() as c:
            c.execute(text("INSERT INTO unsupported_payloads (instance_id, reason, body, "
                           "received_at) SELECT id, 'old', :body, :at FROM instances "
                           "WHERE name = :name"), {"body": json.dumps(envelope), "name": num.name,
                                                    "at": datetime.now(UTC)})
    finally:
        engine.dispose()
    kept = httpx.get(f"{server.url}/api/instances/{num.name}/unsupported", headers=ADMIN).json()
    assert kept[0]["reason"] == "old" and json.loads(kept[0]["body"])["apikey"] == "[redacted]"
    assert not any(token in k["body"] or "evo-global-key-123" in k["body"] for k in kept)


# -- 5. echoes and an agent on the phone (Evolution) -------------------------------------------

def test_our_echo_is_not_stored_twice_and_an_agent_on_the_phone_pauses_the_bot(
        server: Server, numbers: Any) -> None:
    num = numbers("evolution")
    phone = _phone()
    assert num.post(num.text(_mid(), phone, QUESTION)).json()["stored"] == 1
    reply = _reply_recorded(server, num, phone)
    reply_id = reply.id
    messages_before = _count(server, "messages")
    for body in (fe.sent_echo(reply_id, phone, reply.text, instance=num.remote),
                 fe.message(reply_id, phone, reply.text, from_me=True, instance=num.remote)):
        resp = num.post(body)
        assert resp.status_code == 200 and resp.json()["stored"] == 0, resp.text
    assert _count(server, "messages", "WHERE provider_message_id=?", reply_id) == 1
    assert _count(server, "messages") == messages_before
    echoed = _message(server, num, reply_id)
    assert echoed is not None and _events(echoed).count("echo") == 2
    assert echoed["author"] in ("assistant", "system") and echoed["direction"] == "out"

    # An agent answers a new customer from the phone: stored as theirs, the bot pauses.
    customer, typed = _phone(), _mid()
    resp = num.post(fe.message(typed, customer, "Oi! Aqui é a Ana, da loja.", from_me=True,
                               instance=num.remote))
    assert resp.status_code == 200 and resp.json()["stored"] == 1
    agent = _message(server, num, typed)
    assert agent is not None
    assert (agent["direction"], agent["author"], agent["status"]) == ("out", "agent", "sent")
    assert "bot_paused" in _events(agent)
    mode = _rows(server, "SELECT mode FROM conversations WHERE id=?", agent["conversation_id"])
    assert mode == [("human",)]
    asked = _mid()
    assert num.post(num.text(asked, customer, QUESTION)).json()["stored"] == 1
    waiting = _wait_step(server, num, asked, "for_human")
    assert waiting["status"] == "handed_off"
    time.sleep(QUIET)
    assert _replies_to(num, customer) == []
    assert _rows(server, "SELECT mode FROM conversations WHERE id=?",
                 agent["conversation_id"]) == [("human",)]


# -- 6. groups and history ---------------------------------------------------------------------

@pytest.mark.parametrize("provider", PROVIDERS)
def test_groups_are_not_answered_and_backlog_is_stored_stale_never_answered(
        server: Server, numbers: Any, provider: str) -> None:
    num = numbers(provider)
    member, group, old_id = _phone(), "120363025246125486@g.us", _mid()
    group_id = _mid()
    if provider == "evolution":
        in_group = fe.message(group_id, group, QUESTION, instance=num.remote,
                              participant=f"{member}@s.whatsapp.net")
    elif provider == "waha":
        in_group = fw.message(group_id, group, QUESTION, session=num.remote,
                              participant=f"{member}@c.us")
    else:
        in_group = fc.message(f"wamid.{group_id}", member, QUESTION, timestamp=int(time.time()),
                              phone_number_id=num.remote, group_id=group)
    resp = num.post(in_group)
    assert resp.status_code == 200 and resp.json()["stored"] == 0
    assert resp.json()["ignored"] == 1

    customer = _phone()
    old_id = old_id if provider != "cloud" else f"wamid.{old_id}"
    late = num.text(old_id, customer, QUESTION, timestamp=int(time.time()) - 3600)
    assert num.post(late).json()["stored"] == 1
    stale = [num.stored_id(old_id, customer)]
    if provider == "evolution":  # history Evolution sends after a reconnect: recent, yet backlog
        history_id = _mid()
        history = fe.envelope("messages.set", {"messages": [fe.message_data(
            history_id, customer, "mensagem antiga do histórico")], "isLatest": True},
            instance=num.remote)
        assert num.post(history).json()["stored"] == 1
        stale.append(history_id)
    for provider_id in stale:
        msg = _message(server, num, provider_id)
        assert msg is not None and msg["status"] == "stale", msg
        assert "stale" in _events(msg)
    time.sleep(QUIET + 2)  # past the turn debounce: an answer would be on its way
    assert num.sent == []
    for provider_id in stale:
        msg = _message(server, num, provider_id)
        assert msg is not None and msg["status"] == "stale"
    assert _count(server, "messages", "WHERE provider_message_id LIKE ?", f"%{group_id}%") == 0


# -- 7. files ----------------------------------------------------------------------------------

def _media_body(num: Number, msg_id: str, phone: str, data: bytes, mime: str, *,
                inline: bool = False) -> bytes:
    """A customer's file as the gateway posts it; the fake holds the file to download."""
    now = int(time.time())
    if num.provider == "evolution":
        kind = "documentMessage" if mime.startswith("application/") else "imageMessage"
        part: dict[str, Any] = {"mimetype": mime, "fileName": "arquivo"}
        message: dict[str, Any] = {kind: part}
        if inline:
            message["base64"] = base64.b64encode(data).decode()
        else:
            num.gw.media[msg_id] = (data, mime, None)
        return fe.message(msg_id, phone, message=message, instance=num.remote, timestamp=now)
    if num.provider == "waha":
        kind = "documentMessage" if mime.startswith("application/") else "imageMessage"
        url = num.gw.file_url(f"false_{phone}@c.us_{msg_id}.bin", data, mime)
        return fw.message(msg_id, phone, "", session=num.remote, timestamp=now, hasMedia=True,
                          media={"url": url, "mimetype": mime, "filename": None, "error": None},
                          _data={"message": {kind: {"mimetype": mime}}})
    kind = "document" if mime.startswith("application/") else "image"
    num.gw.add_media(f"media-{msg_id}", data, mime)
    part = {"id": f"media-{msg_id}", "mime_type": mime}
    if kind == "document":
        return fc.message(msg_id, phone, type=kind, timestamp=now, phone_number_id=num.remote,
                          document=part)
    return fc.message(msg_id, phone, type=kind, timestamp=now, phone_number_id=num.remote,
                      image=part)


def _media_state(server: Server, num: Number, provider_id: str, state: str) -> dict[str, Any]:
    return _wait_step(server, num, provider_id, f"media_{state}")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_inbound_files_are_downloaded_checked_and_kept_by_content(
        server: Server, numbers: Any, provider: str) -> None:
    num = numbers(provider)
    phone = _phone()
    cases = [(PNG, "image/png", False)] + ([(PNG, "image/png", True)]
                                           if provider == "evolution" else [])
    for data, mime, inline in cases:
        msg_id = _mid() if provider != "cloud" else f"wamid.{_mid()}"
        assert num.post(_media_body(num, msg_id, phone, data, mime, inline=inline)
                        ).json()["stored"] == 1
        stored = num.stored_id(msg_id, phone)
        msg = _media_state(server, num, stored, "stored")
        sha = _step(msg, "media_stored")["sha256"]
        path = server.data_dir / "media" / sha[:2] / sha
        assert path.read_bytes() == data
        (media,) = _rows(server, "SELECT media FROM messages WHERE id=?", msg["id"])[0]
        media = json.loads(media) if isinstance(media, str) else media
        assert media["state"] == "stored" and media["sha256"] == sha
        assert "data" not in media  # the inline copy is not kept in the row
    # How each file was fetched, as the gateway wants it.
    if provider == "evolution":
        asked = [r for r in num.http.requests if "getBase64FromMediaMessage" in r.path]
        assert len(asked) == 1 and asked[0].headers["apikey"] == fe.API_KEY
    elif provider == "waha":
        asked = [r for r in num.http.requests if r.path.startswith("/api/files/")]
        assert len(asked) == 1 and asked[0].headers["x-api-key"] == "waha-key"
    else:
        asked = [r.path for r in num.http.requests if r.method == "GET"]
        assert any(p.endswith("/media-" + p.split("/media-")[-1]) for p in asked)
        assert "/whatsapp_business/attachments/" in asked


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("what", ["over the limit", "pdf as jpeg", "program as jpeg",
                                  "program as pdf"])
def test_a_file_over_the_limit_or_not_what_it_claims_is_refused_and_the_message_kept(
        server: Server, numbers: Any, provider: str, what: str) -> None:
    num = numbers(provider)
    phone = _phone()
    data, mime = {"over the limit": (PNG + bytes(16_000_001), "image/png"),
                  "pdf as jpeg": (PDF, "image/jpeg"),
                  "program as jpeg": (ELF, "image/jpeg"),
                  "program as pdf": (ELF, "application/pdf")}[what]
    msg_id = _mid() if provider != "cloud" else f"wamid.{_mid()}"
    resp = num.post(_media_body(num, msg_id, phone, data, mime,
                                inline=provider == "evolution" and what != "over the limit"))
    assert resp.status_code == 200 and resp.json()["stored"] == 1, resp.text
    stored = num.stored_id(msg_id, phone)
    msg = _media_state(server, num, stored, "refused")
    reason = _step(msg, "media_refused")["reason"]
    assert {"over the limit": "limit", "pdf as jpeg": "application/pdf",
            "program as jpeg": "program", "program as pdf": "program"}[what] in reason, reason
    assert msg["direction"] == "in" and msg["provider_message_id"] == stored
    assert not list((server.data_dir / "media").rglob("*.tmp"))
    shas = [p.name for p in (server.data_dir / "media").rglob("*") if p.is_file()]
    assert hashlib.sha256(data).hexdigest() not in shas


# -- 8. delivery statuses and deleted messages ------------------------------------------------

def _status_body(num: Number, provider_id: str, status: str, phone: str) -> bytes:
    if num.provider == "evolution":
        word = {"delivered": "DELIVERY_ACK", "read": "READ", "failed": "ERROR"}[status]
        data = {"keyId": provider_id, "remoteJid": f"{phone}@s.whatsapp.net", "fromMe": True,
                "participant": None, "status": word, "instanceId": "clx0instance01",
                "messageId": "cm2x0k0000001msgdb"}
        if status == "failed":
            data |= {"errorCode": 479, "error": "the recipient's device refused it"}
        return fe.envelope("messages.update", data, instance=num.remote)
    if num.provider == "waha":
        return fw.status(provider_id, {"delivered": 2, "read": 3, "failed": -1}[status],
                         session=num.remote)
    if status == "failed":
        return fc.status(provider_id, "failed", recipient=phone, code=131026,
                         title="Message undeliverable", phone_number_id=num.remote)
    return fc.status(provider_id, status, recipient=phone, phone_number_id=num.remote)


def _revoke_body(num: Number, msg_id: str, phone: str) -> bytes:
    if num.provider == "evolution":
        return fe.message(_mid(), phone, instance=num.remote, message={"protocolMessage": {
            "key": {"remoteJid": f"{phone}@s.whatsapp.net", "fromMe": False, "id": msg_id},
            "type": "REVOKE"}})
    if num.provider == "waha":
        chat = f"{phone}@c.us"
        return json.dumps(fw.envelope("message.revoked", {
            "after": {"id": f"false_{chat}_{_mid()}", "timestamp": int(time.time()),
                      "from": chat, "fromMe": False, "body": "", "hasMedia": False},
            "revokedMessageId": msg_id, "before": None}, session=num.remote)).encode()
    return fc.message(f"wamid.{_mid()}", phone, type="revoke", timestamp=int(time.time()),
                      phone_number_id=num.remote, revoke={"original_message_id": msg_id})


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_message_deleted_before_its_turn_stays_marked_and_unanswered(
        server: Server, numbers: Any, provider: str) -> None:
    """The customer takes a message back before the bot answered it: its revoke arrives after
    it (within the debounce) or, a retried delivery reordered, before it. Either way the
    message stays, marked deleted, and nothing answers it."""
    num = numbers(provider)
    for revoke_first in (False, True):
        phone = _phone()
        msg_id = _mid() if provider != "cloud" else f"wamid.{_mid()}"
        bodies = [num.text(msg_id, phone, QUESTION), _revoke_body(num, msg_id, phone)]
        for body in reversed(bodies) if revoke_first else bodies:
            resp = num.post(body)
            assert resp.status_code == 200, resp.text
        customer = _message(server, num, num.stored_id(msg_id, phone))
        assert customer is not None and customer["text"] == QUESTION
        assert customer["status"] == "ignored", (revoke_first, _events(customer))
        assert _step(customer, "deleted").get("early", False) is revoke_first


@pytest.mark.parametrize("provider", PROVIDERS)
def test_statuses_move_our_reply_forward_and_a_deleted_message_stays(
        server: Server, numbers: Any, provider: str) -> None:
    num = numbers(provider)
    phone = _phone()
    msg_id = _mid() if provider != "cloud" else f"wamid.{_mid()}"
    assert num.post(num.text(msg_id, phone, QUESTION)).json()["stored"] == 1
    reply_id = _reply_recorded(server, num, phone).id
    _wait("the reply marked sent", lambda: (m := _message(server, num, reply_id))
          and m["status"] == "sent")
    for status in ("delivered", "read", "delivered", "failed"):
        resp = num.post(_status_body(num, reply_id, status, phone))
        assert resp.status_code == 200 and resp.json()["statuses"] == 1, resp.text
        msg = _message(server, num, reply_id)
        assert msg is not None
        if status == "delivered" and "read" in _events(msg):
            assert msg["status"] == "read"  # a late "delivered" never undoes "read"
        else:
            assert msg["status"] == status
    assert msg is not None
    failed = _step(msg, "failed")
    code = {"evolution": "479", "waha": "-1", "cloud": "131026"}[provider]
    assert f"[{code}]" in failed["error"], failed

    # The customer deletes their message: it stays, with the step in its journey.
    stored = num.stored_id(msg_id, phone)
    resp = num.post(_revoke_body(num, msg_id, phone))
    assert resp.status_code == 200, resp.text
    customer = _message(server, num, stored)
    assert customer is not None and customer["text"] == QUESTION
    assert "deleted" in _events(customer)
