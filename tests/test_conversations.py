"""Whole conversations through the simulator, against a real server running flows: a menu
answered by number, by its text, by meaning and wrongly; a question refusing a bad CPF; an
outside API looked up and timing out; handoff to a team with the one message that says what
happens next (and, outside business hours, the closed message once); the assistant still
answering while the customer waits in the queue; a burst answered once.

Every wait is on a condition with a deadline (see tests/test_message_path.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import ATENDE, DEMO_DOCS, ROOT, Server, fresh_database, server_env
from tests.fake_whisper import KEY as WHISPER_KEY
from tests.fake_whisper import FakeWhisper
from tests.test_message_path import ADMIN, _rows, _settled, _wait

FLOWS = ROOT / "tests" / "fixtures" / "flows"
AURORA = ROOT / "demo" / "loja-aurora" / "flow.yaml"
YAML = {**ADMIN, "Content-Type": "application/yaml"}
BURST_WINDOW = 1.5  # the server waits this long after a message before its turn
# Open every day but closed (a holiday) yesterday, today and tomorrow, whatever the zone.
CATALOG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))  # a PNG's signature: sniffed as an image
VOICE_NOTE = b"OggS\x00\x02" + bytes(range(256)) * 8  # an Ogg page's start: sniffed as audio
CLOSED_NOW = {"timezone": "America/Sao_Paulo", "hours": {"seg-dom": ["08:00-18:00"]},
              "closed": [str(date.today() + timedelta(days=d)) for d in (-1, 0, 1)]}


class OrdersApi:
    """An outside order API: order 123 is "em separação", 999 never answers in time."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/catalogo.png":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.send_header("Content-Length", str(len(CATALOG)))
                    self.end_headers()
                    self.wfile.write(CATALOG)
                    return
                if self.path.endswith("/999"):
                    time.sleep(4)
                body = json.dumps({"status": "em separação", "id": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def orders() -> Iterator[OrdersApi]:
    api = OrdersApi()
    yield api
    api.httpd.shutdown()


@pytest.fixture(scope="module")
def whisper() -> Iterator[FakeWhisper]:
    fake = FakeWhisper(texts={hashlib.sha256(VOICE_NOTE).hexdigest():
                              "quais as formas de pagamento?"})
    yield fake
    fake.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         orders: OrdersApi, whisper: FakeWhisper,
         llm) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """The demo shop with its flow as the number's default, the order-lookup flow, and three
    teams: "atendimento" (one agent, offline), "trocas" (one agent, online) and "noturno"
    (never open)."""
    data = tmp_path_factory.mktemp("shop")
    with fresh_database(request.param, data) as url:
        srv = Server(data, server_env(data, ATENDE_DATABASE_URL=url,
                                      ATENDE_TURN_DEBOUNCE_SECONDS=str(BURST_WINDOW),
                                      ATENDE_TRANSCRIBE_URL=whisper.url,
                                      ATENDE_TRANSCRIBE_API_KEY=WHISPER_KEY,
                                      # the ordering test's customers write ten messages in a
                                      # few seconds, as no person does: not a loop
                                      ATENDE_LOOP_REPLIES="60"), url)
        subprocess.run([*ATENDE, "kb", "ingest", str(DEMO_DOCS)], env=srv.env, cwd=ROOT,
                       check=True, capture_output=True)
        srv.start()
        try:
            _setup(srv, orders)
            yield srv
        finally:
            srv.stop()


def _api(srv: Server, method: str, path: str, **kw: object) -> httpx.Response:
    resp = httpx.request(method, f"{srv.url}{path}", headers=kw.pop("headers", ADMIN),
                         timeout=30, **kw)  # type: ignore[arg-type]
    assert resp.status_code < 300, f"{method} {path}: {resp.status_code} {resp.text}"
    return resp


def _setup(srv: Server, orders: OrdersApi) -> None:
    for key in ("pedido", "cpf", "email"):
        _api(srv, "POST", "/api/fields", json={"key": key, "label": key, "type": "text"})
    ana = _api(srv, "POST", "/api/users", json={"name": "Ana Souza", "email": "ana@aurora.com",
                                                "level": "agent"}).json()
    bia = _api(srv, "POST", "/api/users", json={"name": "Bia Lima", "email": "bia@aurora.com",
                                                "level": "agent"}).json()
    _api(srv, "PATCH", f"/api/users/{bia['id']}", json={"online": True})
    teams = {}
    for name, hours in (("atendimento", None), ("trocas", None), ("noturno", CLOSED_NOW)):
        teams[name] = _api(srv, "POST", "/api/teams", json={"name": name, "hours": hours}).json()
    _api(srv, "PUT", f"/api/teams/{teams['atendimento']['id']}/members/{ana['id']}")
    _api(srv, "PUT", f"/api/teams/{teams['trocas']['id']}/members/{bia['id']}")
    _api(srv, "POST", "/api/flows/import", content=AURORA.read_bytes(), headers=YAML)
    pedidos = (FLOWS / "pedidos.yaml").read_text().replace("API_URL", orders.url)
    _api(srv, "POST", "/api/flows/import", content=pedidos.encode(), headers=YAML)
    _api(srv, "POST", "/api/flows/import", content=(FLOWS / "eco.yaml").read_bytes(),
         headers=YAML)
    catalogo = (FLOWS / "catalogo.yaml").read_text().replace("API_URL", orders.url)
    _api(srv, "POST", "/api/flows/import", content=catalogo.encode(), headers=YAML)
    _api(srv, "PATCH", "/api/instances/demo", json={"default_flow": "loja-aurora"})


def _say(srv: Server, phone: str, text: str, name: str = "Carla", **more: str) -> None:
    sent = httpx.post(f"{srv.url}/simulator/api/demo/messages",
                      json={"phone": phone, "name": name, "text": text, **more}, timeout=30)
    assert sent.status_code == 200 and sent.json()["webhook_status"] == 200, sent.text


def _heard(srv: Server, phone: str) -> list[str]:
    chat = httpx.get(f"{srv.url}/simulator/api/demo/messages", params={"phone": phone}).json()
    return [m["text"] for m in chat if m["direction"] == "out"]


def _turn(srv: Server, phone: str, text: str, timeout: float = 90) -> list[str]:
    """Say ``text`` and return what the customer is told back, once the conversation settled."""
    before = len(_heard(srv, phone))
    _say(srv, phone, text)
    _wait(f"the turn of {text!r} to settle", lambda: _settled(srv, phone), timeout)
    return _heard(srv, phone)[before:]


def _journey(srv: Server, phone: str, text: str) -> list[dict]:
    """The journey of what the customer at ``phone`` wrote as ``text``."""
    (msg_id,) = _rows(srv, "SELECT m.id FROM messages m JOIN conversations c ON "
                      "c.id=m.conversation_id WHERE c.address=? AND m.text=?", phone, text)[0]
    return _api(srv, "GET", f"/api/messages/{msg_id}").json()["journey"]


def _conversation(srv: Server, phone: str) -> dict:
    (conv_id,) = _rows(srv, "SELECT id FROM conversations WHERE address=?", phone)[0]
    return _api(srv, "GET", f"/api/conversations/{conv_id}/session").json()


def test_a_menu_takes_the_number_the_text_and_the_meaning(shop: Server) -> None:
    menu = _turn(shop, "5511955550001", "oi")
    assert len(menu) == 1 and "Digite 1 para dúvidas" in menu[0] and "Carla" in menu[0]
    assert _turn(shop, "5511955550001", "2")[0].startswith("Vamos cuidar da sua troca")
    assert _conversation(shop, "5511955550001")["session"]["node"] == "pedido"

    _turn(shop, "5511955550002", "bom dia")
    assert _turn(shop, "5511955550002", "Trocas")[0].startswith("Vamos cuidar da sua troca")

    _turn(shop, "5511955550003", "olá")
    by_meaning = _turn(shop, "5511955550003", "quero devolver uma mesa que comprei")
    assert by_meaning[0].startswith("Vamos cuidar da sua troca")
    journey = _journey(shop, "5511955550003", "quero devolver uma mesa que comprei")
    trace = next(s["detail"]["trace"] for s in journey if s["event"] == "flow")
    matched = next(t for t in trace if t.get("matched"))
    assert matched["matched"] == "by_meaning" and matched["score"] >= 0.6


def test_a_question_sent_instead_of_a_menu_choice_is_answered(shop: Server) -> None:
    phone = "5511955550018"
    _turn(shop, phone, "oi")
    asked = "quais as formas de pagamento?"  # "dúvidas", by its meaning
    told = _turn(shop, phone, asked)
    assert len(told) == 2 and told[0].startswith("Pode perguntar!"), told
    assert "pix" in told[1].lower(), told
    journey = _journey(shop, phone, asked)
    trace = next(s["detail"]["trace"] for s in journey if s["event"] == "flow")
    assert {"node": "duvidas", "ai": "asked", "carried": "menu", "turn": 1} in trace
    assert any(s["event"] == "answered" for s in journey)


def test_a_menu_asks_again_then_hands_off_when_retries_run_out(shop: Server) -> None:
    phone = "5511955550004"
    _turn(shop, phone, "oi")
    for _ in range(2):
        again = _turn(shop, phone, "xyzzy")
        assert again[0].startswith("Não entendi sua resposta") and "Digite 1" in again[-1]
    last = _turn(shop, phone, "xyzzy")
    assert last == ["Certo! Vou chamar uma pessoa da nossa equipe. Aguarde um instante, "
                    "por favor."]
    conv = _conversation(shop, phone)
    assert conv["mode"] == "human" and conv["status"] == "queued"  # Ana, its agent, is offline
    rows = _rows(shop, "SELECT name FROM teams WHERE id=?", conv["team_id"])
    assert rows == [("atendimento",)]


def test_a_question_refuses_a_bad_cpf_and_keeps_a_good_one(shop: Server) -> None:
    phone = "5511955550005"
    _turn(shop, phone, "oi")
    _turn(shop, phone, "2")
    assert _turn(shop, phone, "meu pedido é AU20250417")[0].startswith("Agora, o CPF")
    refused = _turn(shop, phone, "111.111.111-11")
    assert refused and "CPF" in refused[0] and not refused[0].startswith("E qual e-mail")
    assert _turn(shop, phone, "529.982.247-25")[0].startswith("E qual e-mail")
    done = _turn(shop, phone, "carla@example.com")
    assert "AU20250417" in done[0]
    conv = _conversation(shop, phone)
    assert conv["mode"] == "human" and conv["status"] == "assigned"  # Bia is online in trocas
    (contact_id,) = _rows(shop, "SELECT contact_id FROM conversations WHERE address=?",
                          phone)[0]
    fields = _api(shop, "GET", f"/api/contacts/{contact_id}/fields").json()
    assert {k: v for k, v in _as_dict(fields).items() if v} == {
        "pedido": "AU20250417", "cpf": "52998224725", "email": "carla@example.com"}


def _as_dict(fields: object) -> dict[str, str]:
    if isinstance(fields, dict):
        return {k: (v["value"] if isinstance(v, dict) else v) for k, v in fields.items()}
    return {f["key"]: f["value"] for f in fields}  # type: ignore[union-attr]


def test_an_outside_api_answers_and_its_timeout_takes_the_error_branch(shop: Server) -> None:
    assert _turn(shop, "5511955550006", "quero rastrear") == ["Qual o número do pedido?"]
    assert _turn(shop, "5511955550006", "123") == ["Seu pedido 123 está: em separação."]
    _turn(shop, "5511955550007", "rastreio")
    slow = _turn(shop, "5511955550007", "999")
    assert slow == ["Nosso sistema de pedidos não respondeu agora. Tente de novo mais tarde."]


def test_a_private_host_no_one_named_takes_the_error_branch(shop: Server,
                                                             orders: OrdersApi) -> None:
    # The same API by another name: "localhost" is not the host the company named (127.0.0.1)
    flow = (FLOWS / "pedidos.yaml").read_text().replace("API_URL", orders.url.replace(
        "127.0.0.1", "localhost")).replace("id: pedidos", "id: pedidos-local").replace(
        "[rastrear, rastreio]", "[consultar]")
    _api(shop, "POST", "/api/flows/import", content=flow.encode(), headers=YAML)
    phone = "5511955550019"
    assert _turn(shop, phone, "consultar") == ["Qual o número do pedido?"]
    assert _turn(shop, phone, "123") == [
        "Nosso sistema de pedidos não respondeu agora. Tente de novo mais tarde."]
    journey = _journey(shop, phone, "123")
    (failed,) = [t for s in journey if s["event"] == "flow" for t in s["detail"]["trace"]
                 if t.get("http") == "failed"]
    assert "localhost is a private address" in failed["error"]


def test_asking_for_a_person_is_answered_with_what_happens_next(shop: Server) -> None:
    phone = "5511955550008"
    _turn(shop, phone, "oi")
    _turn(shop, phone, "1")  # dúvidas: AI mode
    told = _turn(shop, phone, "quero falar com um atendente")
    assert len(told) == 1 and "atendimento" in told[0], told
    # Waiting in the queue, no agent has answered: the assistant still answers what it can.
    answered = _turn(shop, phone, "quais as formas de pagamento?")
    assert len(answered) == 1 and "pix" in answered[0].lower()
    # Once an agent writes, the bot stays out.
    (conv_id,) = _rows(shop, "SELECT id FROM conversations WHERE address=?", phone)[0]
    _api(shop, "POST", f"/api/conversations/{conv_id}/messages", data={"text": "Oi, sou a Ana"})
    _wait("the agent's message to go out", lambda: _settled(shop, phone))
    assert _turn(shop, phone, "qual o prazo de entrega pro sul?") == []


def test_outside_business_hours_the_closed_message_goes_once(shop: Server) -> None:
    phone = "5511955550009"
    _turn(shop, phone, "oi")
    (conv_id,) = _rows(shop, "SELECT id FROM conversations WHERE address=?", phone)[0]
    handed = _api(shop, "POST", f"/api/conversations/{conv_id}/handoff",
                  json={"team": "noturno"}).json()
    assert handed["outside_hours"] is True and handed["notice_box"]
    _wait("the closed message to go out", lambda: _settled(shop, phone))
    closed = [t for t in _heard(shop, phone) if "fechado" in t]
    assert len(closed) == 1 and "noturno" in closed[0] and " às 08:00" in closed[0]
    handed = _api(shop, "POST", f"/api/conversations/{conv_id}/handoff",
                  json={"team": "noturno"}).json()
    assert handed["notice"] is None  # told already within the team's window
    assert len([t for t in _heard(shop, phone) if "fechado" in t]) == 1


def test_closing_ends_the_session_and_the_next_message_starts_over(shop: Server) -> None:
    phone = "5511955550010"
    _turn(shop, phone, "oi")
    _turn(shop, phone, "3")
    conv = _conversation(shop, phone)
    assert conv["mode"] == "human"
    (conv_id,) = _rows(shop, "SELECT id FROM conversations WHERE address=?", phone)[0]
    _api(shop, "POST", f"/api/conversations/{conv_id}/close")
    assert _conversation(shop, phone)["session"] is None
    again = _turn(shop, phone, "oi de novo")
    assert "Digite 1 para dúvidas" in again[0]
    # Reopened by an agent: a person's again, with nothing sent and no new handoff.
    before = _heard(shop, phone)
    _api(shop, "POST", f"/api/conversations/{conv_id}/reopen", json={})
    conv = _conversation(shop, phone)
    assert conv["mode"] == "human" and conv["status"] == "assigned"
    assert _heard(shop, phone) == before


def test_a_burst_of_five_is_one_turn(shop: Server) -> None:
    phone = "5511955550011"
    _turn(shop, phone, "oi")
    _turn(shop, phone, "1")  # dúvidas: AI mode
    burst = ["oi", "uma pergunta", "sobre entrega", "vcs entregam em sp?", "obrigada"]
    threads = [threading.Thread(target=_say, args=(shop, phone, t)) for t in burst]
    before = len(_heard(shop, phone))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _wait("the burst to settle", lambda: _settled(shop, phone))
    assert len(_heard(shop, phone)) - before == 1
    merged = _rows(shop, "SELECT e.detail FROM message_events e JOIN messages m ON "
                   "m.id=e.message_id JOIN conversations c ON c.id=m.conversation_id WHERE "
                   "c.address=? AND e.event='turn_started' ORDER BY e.id DESC LIMIT 5", phone)
    assert [json.loads(d) if isinstance(d, str) else d for (d,) in merged] == [
        {"merged": 5}] * 5


def test_a_menu_answer_inside_a_burst_is_taken_not_asked_again(shop: Server) -> None:
    """"desculpa a demora" and "2" within one debounce are one turn; its last message answers
    the menu. Read whole, "desculpa a demora 2" names no option and the menu came again."""
    phone = "5511955550020"
    _turn(shop, phone, "oi")
    before = len(_heard(shop, phone))
    burst = [threading.Thread(target=_say, args=(shop, phone, t))
             for t in ("desculpa a demora", "2")]  # at once: within the debounce however slow
    for t in burst:
        t.start()
    for t in burst:
        t.join()
    _wait("the burst to settle", lambda: _settled(shop, phone))
    told = _heard(shop, phone)[before:]
    assert len(told) == 1 and told[0].startswith("Vamos cuidar da sua troca"), told
    merged = _rows(shop, "SELECT e.detail FROM message_events e JOIN messages m ON "
                   "m.id=e.message_id JOIN conversations c ON c.id=m.conversation_id WHERE "
                   "c.address=? AND e.event='turn_started' ORDER BY e.id DESC LIMIT 1", phone)
    assert [json.loads(d) if isinstance(d, str) else d for (d,) in merged] == [{"merged": 2}]


def _speak(srv: Server, phone: str) -> list[str]:
    before = len(_heard(srv, phone))
    _say(srv, phone, "", voice=base64.b64encode(VOICE_NOTE).decode(), voice_mime="audio/ogg")
    _wait("the voice note's turn to settle", lambda: _settled(srv, phone), 90)
    return _heard(srv, phone)[before:]


def test_a_voice_note_is_transcribed_and_answered(shop: Server, whisper: FakeWhisper) -> None:
    phone = "5511955550012"
    _turn(shop, phone, "oi")
    _turn(shop, phone, "1")  # dúvidas: AI mode
    answered = _speak(shop, phone)
    assert len(answered) == 1 and "pix" in answered[0].lower()
    (conv_id,) = _rows(shop, "SELECT id FROM conversations WHERE address=?", phone)[0]
    notes = [m for m in _api(shop, "GET", f"/api/conversations/{conv_id}/messages").json()
             if m["type"] == "voice"]
    assert [n["transcript"] for n in notes] == ["quais as formas de pagamento?"]
    assert notes[0]["status"] == "answered"
    sent = whisper.requests[-1]
    assert sent.fields["model"] == "whisper-1" and sent.sha256 == hashlib.sha256(
        VOICE_NOTE).hexdigest()


def test_a_voice_note_heard_as_silence_is_asked_again_not_taken_for_a_file(
        shop: Server, whisper: FakeWhisper) -> None:
    phone = "5511955550034"
    _turn(shop, phone, "oi")
    _turn(shop, phone, "1")  # dúvidas: AI mode
    whisper.script.append(("ok", ""))  # the transcription heard nothing
    told = _speak(shop, phone)
    assert len(told) == 1 and "Não recebi nenhum texto" in told[0], told
    assert _conversation(shop, phone)["mode"] != "human"


def test_a_photo_sent_to_a_flows_assistant_goes_to_a_person(shop: Server) -> None:
    phone = "5511955550033"
    _turn(shop, phone, "oi")
    _turn(shop, phone, "1")  # dúvidas: the flow's AI node
    told = _photo(shop, phone)
    assert len(told) == 1 and told[0].startswith("Recebi seu arquivo"), told
    conv = _conversation(shop, phone)
    assert conv["mode"] == "human" and conv["status"] in ("queued", "assigned")
    (status,), = _rows(shop, "SELECT m.status FROM messages m JOIN conversations c ON "
                       "c.id=m.conversation_id WHERE c.address=? AND m.type='image'", phone)
    assert status == "handed_off"


def test_without_transcription_a_voice_note_goes_to_a_person_said_once(server: Server) -> None:
    phone = "5511955550013"
    told = _speak(server, phone)
    assert len(told) == 1 and "áudio" in told[0]
    assert _speak(server, phone) == []  # told once; the second note waits for the person
    rows = _rows(server, "SELECT m.status FROM messages m JOIN conversations c ON "
                 "c.id=m.conversation_id WHERE c.address=? AND m.direction='in'", phone)
    assert rows == [("handed_off",), ("handed_off",)]


PHOTO = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(64)).decode()


def _photo(srv: Server, phone: str) -> list[str]:
    """Send a photo with no caption (a receipt) and return what the customer is told."""
    before = len(_heard(srv, phone))
    _post_image(srv, phone, PHOTO)
    _wait("the photo's turn to settle", lambda: _settled(srv, phone), 90)
    return _heard(srv, phone)[before:]


def test_a_photo_with_no_words_goes_to_a_person_who_can_open_it(server: Server) -> None:
    """The assistant reads text only: a receipt's photo left to it waited, unseen and
    unanswered, until the customer wrote again."""
    phone = "5511955550031"
    told = _photo(server, phone)
    assert len(told) == 1 and told[0].startswith("Recebi seu arquivo"), told
    assert "atendente" in told[0] or "equipe" in told[0], told
    (conv_id, mode), = _rows(server, "SELECT id, mode FROM conversations WHERE address=?",
                             phone)
    assert mode == "human"
    assert _photo(server, phone) == []  # told once; the second photo waits for the person
    rows = _rows(server, "SELECT m.status FROM messages m WHERE m.conversation_id=? AND "
                 "m.direction='in'", conv_id)
    assert rows == [("handed_off",), ("handed_off",)]


def test_a_photo_sent_to_a_menu_asks_again(shop: Server) -> None:
    phone = "5511955550032"
    _turn(shop, phone, "oi")
    again = _photo(shop, phone)
    assert again[0].startswith("Não entendi sua resposta") and "Digite 1" in again[-1], again
    assert _turn(shop, phone, "2")[0].startswith("Vamos cuidar da sua troca")


def test_ai_mode_resolves_an_elliptic_follow_up_against_the_session(shop: Server) -> None:
    phone = "5511955550014"
    _turn(shop, phone, "oi")
    assert _turn(shop, phone, "1")[0].startswith("Pode perguntar!")
    north = _turn(shop, phone, "qual o prazo de entrega pro norte?")
    assert len(north) == 1 and "8 a 15" in north[0], north
    south = _turn(shop, phone, "e pro sul?")
    assert len(south) == 1 and "3 a 6" in south[0], south
    journey = _journey(shop, phone, "e pro sul?")
    answered = next(s["detail"] for s in journey if s["event"] == "answered")
    assert answered["asked"] == "qual o prazo de entrega pro sul?"


def test_twenty_contacts_ten_messages_each_at_once_replies_in_order(shop: Server) -> None:
    """Every contact's replies come in the order of its messages, none lost, none doubled;
    messages that arrive while a turn runs join the next turn (its reply names them all)."""
    if not shop.db_url.startswith("postgresql"):
        pytest.skip("the ordering test runs on PostgreSQL, where workers truly run at once")
    phones = [f"55119777{i:05d}" for i in range(20)]

    def customer(phone: str) -> None:
        _say(shop, phone, "eco")
        _wait(f"{phone}'s flow to start", lambda: "Pronto." in _heard(shop, phone), 120)
        for n in range(1, 11):
            _say(shop, phone, str(n))

    threads = [threading.Thread(target=customer, args=(p,)) for p in phones]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for phone in phones:
        _wait(f"{phone}'s turns to settle", lambda p=phone: _settled(shop, p), 180)
        echoed = [int(n) for text in _heard(shop, phone) if text.startswith("recebi ")
                  for n in text.removeprefix("recebi ").split()]
        assert echoed == list(range(1, 11)), (phone, _heard(shop, phone))


def test_an_image_and_a_voice_note_10_ms_apart_make_one_contact_and_one_session(
        shop: Server) -> None:
    phone = "5511955550015"
    photo = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(64)).decode()
    sends = [lambda: _say(shop, phone, "", voice=base64.b64encode(VOICE_NOTE).decode()),
             lambda: _post_image(shop, phone, photo)]
    threads = [threading.Thread(target=f) for f in sends]
    threads[0].start()
    time.sleep(0.01)
    threads[1].start()
    for t in threads:
        t.join()
    _wait("both to settle", lambda: _settled(shop, phone), 90)
    contacts = _rows(shop, "SELECT DISTINCT c.contact_id FROM conversations c WHERE "
                     "c.address=?", phone)
    assert len(contacts) == 1
    sessions = _rows(shop, "SELECT COUNT(*) FROM chat_sessions s JOIN conversations c ON "
                     "c.id=s.conversation_id WHERE c.address=?", phone)
    assert sessions == [(1,)]
    kinds = _rows(shop, "SELECT m.type FROM messages m JOIN conversations c ON "
                  "c.id=m.conversation_id WHERE c.address=? AND m.direction='in' ORDER BY "
                  "m.type", phone)
    assert kinds == [("image",), ("voice",)]


def _post_image(srv: Server, phone: str, data: str) -> None:
    """The simulator's page sends voice notes; an image goes as the wire format allows."""
    from tests.test_message_path import _signed_post

    payload = {"event": "message", "id": f"img-{time.time_ns()}", "from": phone,
               "text": "", "timestamp": int(time.time()), "type": "image",
               "media": {"data": data, "mime": "image/png"}}
    assert _signed_post(srv, payload).status_code == 200


def test_the_simulator_runs_a_chosen_flow_and_shows_its_session(shop: Server, browser) -> None:  # type: ignore[no-untyped-def]
    if shop.db_url.startswith("postgresql"):
        pytest.skip("the page is the same on either database")
    page = browser.new_page(locale="pt-BR", viewport={"width": 1280, "height": 800})
    page.goto(f"{shop.url}/simulator")
    page.fill("#phone", "5511955550016")
    page.select_option("#flow", "pedidos")
    page.click("#start")
    page.wait_for_function("document.querySelector('#status').textContent.includes('Sessão nova')")
    page.fill("#text", "oi")
    page.click("button[type=submit]")
    page.wait_for_selector(".msg.out", timeout=60_000)
    assert page.locator(".msg.out").last.inner_text() == "Qual o número do pedido?"
    page.wait_for_function("document.querySelector('#state').textContent.includes('numero')")
    state = page.inner_text("#state")
    assert "fluxo: pedidos" in state and "etapa: numero" in state
    page.fill("#text", "123")
    page.click("button[type=submit]")
    page.wait_for_function("[...document.querySelectorAll('.msg.out')].some("
                           "m => m.textContent.includes('em separação'))", timeout=60_000)
    page.screenshot(path=str(Path(shop.data_dir) / "simulator-flow.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # an agent's phone
    page.screenshot(path=str(Path(shop.data_dir) / "simulator-flow-phone.png"), full_page=True)
    page.close()


def test_a_flow_message_sends_a_file_from_a_url(shop: Server) -> None:
    phone = "5511955550017"
    told = _turn(shop, phone, "me manda o catálogo")
    assert told == ["[image: image/png] Nosso catálogo de verão, Carla!",
                    "Qualquer dúvida, é só chamar."]
    (conv_id,) = _rows(shop, "SELECT id FROM conversations WHERE address=?", phone)[0]
    sent = [m for m in _api(shop, "GET", f"/api/conversations/{conv_id}/messages").json()
            if m["direction"] == "out"]
    assert [m["type"] for m in sent] == ["image", "text"]
    stored = _rows(shop, "SELECT media FROM messages WHERE id=?", sent[0]["id"])[0][0]
    stored = json.loads(stored) if isinstance(stored, str) else stored
    assert stored["sha256"] == hashlib.sha256(CATALOG).hexdigest() and stored["mime"] == \
        "image/png"
