"""The path of one message, end to end, over HTTP against a real running server."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from gateway_bridge import simulator as wire
from server.db import make_engine
from server.secretbox import unseal
from tests.conftest import ATENDE, ROOT, Server, server_env

ADMIN = {"Authorization": "Bearer test-admin-token"}


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


def _wait_reply(srv: Server, phone: str, count: int = 1, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chat = httpx.get(f"{srv.url}/simulator/api/demo/messages", params={"phone": phone}).json()
        out = [m for m in chat if m["direction"] == "out"]
        if len(out) >= count:
            return out
        time.sleep(0.3)
    raise AssertionError(f"no reply for {phone} in {timeout}s")


def _signed_post(srv: Server, payload: dict, secret: str | None = None) -> httpx.Response:
    body = json.dumps(payload).encode()
    sig = wire.sign(body, secret or _instance_secret(srv))
    return httpx.post(f"{srv.url}/webhooks/simulator/demo", content=body,
                      headers={wire.SIGNATURE_HEADER: sig, "Content-Type": "application/json"})


def test_question_is_answered_from_the_knowledge_base(server: Server) -> None:
    phone = "5511912340001"
    sent = httpx.post(f"{server.url}/simulator/api/demo/messages",
                      json={"phone": phone, "name": "Maria", "text": "vcs entregam em sp?"})
    assert sent.status_code == 200 and sent.json()["webhook_status"] == 200
    reply = _wait_reply(server, phone)[0]
    assert reply["text"].strip()

    # The stored question, once, and the reply beside it with the passages it stands on.
    (msg_id,) = _rows(server, "SELECT id FROM messages WHERE provider_message_id=?",
                      sent.json()["id"])[0]
    msgs = httpx.get(f"{server.url}/api/messages/{msg_id}", headers=ADMIN).json()
    assert msgs["status"] == "answered" and msgs["text"] == "vcs entregam em sp?"
    events = [s["event"] for s in msgs["journey"]]
    assert events[:3] == ["received", "turn_started", "answered"]
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
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        journey = httpx.get(f"{server.url}/api/messages/{out[0]['id']}", headers=ADMIN).json()
        if journey["status"] == "delivered":
            break
        time.sleep(0.2)
    assert [s["event"] for s in journey["journey"]] == ["queued", "sent", "delivered"]


def test_same_webhook_twice_stores_one_message_and_one_reply(server: Server) -> None:
    phone = "5511912340002"
    payload = {"event": "message", "id": f"dup-{uuid.uuid4()}", "from": phone, "name": "Ana",
               "text": "qto tempo p/ trocar?", "timestamp": int(time.time())}
    first, second = _signed_post(server, payload), _signed_post(server, payload)
    assert first.json()["stored"] == 1
    assert second.status_code == 200 and second.json() == {
        "stored": 0, "duplicates": 1, "ignored": 0, "statuses": 0}
    _wait_reply(server, phone)
    time.sleep(1.5)  # a second reply, if any, would have come by now
    assert len(_wait_reply(server, phone)) == 1
    rows = _rows(server, "SELECT id FROM messages WHERE provider_message_id=?", payload["id"])
    assert len(rows) == 1
    events = [e for (e,) in _rows(server, "SELECT event FROM message_events WHERE message_id=?",
                                  rows[0][0])]
    assert "duplicate" in events


def test_a_burst_is_answered_as_one_turn(server: Server) -> None:
    phone = "5511912340003"
    for text in ("oi", "vcs parcelam no cartao?", "em quantas vezes?"):
        _signed_post(server, {"event": "message", "id": f"b-{uuid.uuid4()}", "from": phone,
                              "text": text, "timestamp": int(time.time())})
    _wait_reply(server, phone)
    time.sleep(1.5)
    assert len(_wait_reply(server, phone)) == 1
    statuses = _rows(server, "SELECT m.status FROM messages m JOIN conversations c "
                     "ON m.conversation_id=c.id WHERE c.address=? AND m.direction='in'", phone)
    assert [s for (s,) in statuses] == ["answered"] * 3


def test_stale_backlog_is_stored_but_not_answered(server: Server) -> None:
    phone = "5511912340004"
    old = int(time.time()) - 3600
    resp = _signed_post(server, {"event": "message", "id": f"s-{uuid.uuid4()}", "from": phone,
                                 "text": "oi, alguém aí?", "timestamp": old})
    assert resp.json()["stored"] == 1
    time.sleep(2)
    assert _rows(server, "SELECT status FROM messages m JOIN conversations c ON "
                 "m.conversation_id=c.id WHERE c.address=?", phone) == [("stale",)]


@pytest.mark.parametrize("body, fragment", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"event": "message", "from": "5511999990000", "text": "oi"}', "'id'"),
    (b'{"event": "message", "id": "x1", "from": "abc", "text": "oi"}', "'from'"),
    (b'{"event": "typing", "id": "x2"}', "'event'"),
    (b'{"event": "message", "id": "' + b"x" * 129 + b'", "from": "5511999990000"}',
     "longer than 128"),  # PostgreSQL refused the row: a 500
    (b'{"event": "message", "id": "x3", "from": "5511999990000", "timestamp": 1764140000000}',
     "'timestamp'"),  # milliseconds
    (b"[" * 50_000 + b"]" * 50_000, "nested"),
    (b'{"event": "message", "id": "x4\\u0000", "from": "5511999990000"}', "NUL"),
])
def test_malformed_webhook_is_refused_and_nothing_stored(server: Server, body: bytes,
                                                         fragment: str) -> None:
    before = _rows(server, "SELECT count(*) FROM messages")[0][0]
    resp = httpx.post(f"{server.url}/webhooks/simulator/demo", content=body,
                      headers={wire.SIGNATURE_HEADER: wire.sign(body, _instance_secret(server))})
    assert resp.status_code == 400
    assert fragment in resp.json()["detail"]
    assert _rows(server, "SELECT count(*) FROM messages")[0][0] == before


def test_forged_webhook_and_unknown_instance(server: Server) -> None:
    payload = {"event": "message", "id": "forged-1", "from": "5511900000000", "text": "oi"}
    assert _signed_post(server, payload, secret="not-the-secret").status_code == 401
    assert httpx.post(f"{server.url}/webhooks/simulator/demo", json=payload).status_code == 401
    assert httpx.post(f"{server.url}/webhooks/simulator/nope", json=payload).status_code == 404
    assert httpx.post(f"{server.url}/webhooks/evolution/demo", json=payload).status_code == 404
    assert not _rows(server, "SELECT id FROM messages WHERE provider_message_id='forged-1'")


def test_health_and_openapi(server: Server) -> None:
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok"
    assert health["database"]["dialect"] == server.db_url.split(":")[0].split("+")[0]
    assert "default" in health["vector_store"]["collections"]
    assert health["model"]["ok"] is True
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "/webhooks/{provider}/{instance}" in spec["paths"]
    assert httpx.get(f"{server.url}/docs").status_code == 200


def test_admin_api_needs_the_token(server: Server) -> None:
    assert httpx.get(f"{server.url}/api/messages/1").status_code == 401
    bad = {"Authorization": "Bearer wrong"}
    assert httpx.get(f"{server.url}/api/messages/1", headers=bad).status_code == 401


@pytest.mark.parametrize("content", [None, b"this is not a model"])
def test_missing_or_broken_model_stops_startup_naming_the_setting(tmp_path, content) -> None:
    import subprocess

    model = tmp_path / "model.gguf"
    if content is not None:
        model.write_bytes(content)
    env = server_env(tmp_path, ATENDE_LLM_MODEL_PATH=str(model))
    proc = subprocess.run([*ATENDE, "serve", "--port", "1"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "ATENDE_LLM_MODEL_PATH" in proc.stderr
    assert str(model) in proc.stderr.replace("\n", "")


def test_admin_uploads_documents_and_bad_ones_change_nothing(server: Server) -> None:
    from tests import docs_factory as make

    url = f"{server.url}/api/kb/loja2/documents"
    files = [("files", ("horario.pdf", make.pdf(["Horário de atendimento",
                                                 "Atendemos de segunda a sábado, das 9h às 18h."]),
                        "application/pdf"))]
    ok = httpx.post(url, files=files, headers=ADMIN, timeout=60)
    assert ok.status_code == 200 and ok.json()[0]["status"] == "added"
    again = httpx.post(url, files=files, headers=ADMIN, timeout=60)
    assert again.json()[0]["status"] == "unchanged"
    before = httpx.get(url, headers=ADMIN).json()
    bad = httpx.post(url, headers=ADMIN, timeout=60, files=[
        ("files", ("scan.pdf", make.pdf_without_text(), "application/pdf")),
        ("files", ("horario.pdf", b"%PDF-1.4 broken", "application/pdf"))])
    assert bad.status_code == 422
    assert [r["status"] for r in bad.json()] == ["error", "error"]
    assert "no text layer" in bad.json()[0]["error"]
    assert httpx.get(url, headers=ADMIN).json() == before == {"horario.pdf": 1}
    assert httpx.post(url, files=files).status_code == 401  # admin only
    assert httpx.delete(f"{url}/horario.pdf", headers=ADMIN).json() == {"removed_passages": 1}
    assert httpx.delete(f"{url}/horario.pdf", headers=ADMIN).status_code == 404


def test_bad_addresses_get_a_clear_error_and_the_schema_says_which(server: Server) -> None:
    """What schemathesis found against the OpenAPI spec: each of these was a 500."""
    api = f"{server.url}/api"
    gone = httpx.delete(f"{api}/kb/nenhuma/documents/faq.md", headers=ADMIN)
    assert gone.status_code == 404 and "nenhuma" in gone.json()["detail"]
    bad_name = httpx.get(f"{api}/kb/.oculta/documents", headers=ADMIN)
    assert bad_name.status_code == 422  # a knowledge base is a folder: no leading dot
    assert httpx.get(f"{api}/messages/{2**70}", headers=ADMIN).status_code == 422
    assert httpx.get(f"{server.url}/simulator/api/demo/messages",
                     params={"phone": "5511999990000", "after": 2**70}).status_code == 422
    spec = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert {"401", "403", "404"} <= set(spec["/api/messages/{message_id}"]["get"]["responses"])
    assert {"400", "401", "404", "413"} <= set(
        spec["/webhooks/{provider}/{instance}"]["post"]["responses"])


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
    deadline, seen = time.monotonic() + 60, {}
    while len(fake_gateway.received) < 3 and time.monotonic() < deadline:
        seen.setdefault(len(fake_gateway.received), time.monotonic())
        time.sleep(0.2)
    seen[3] = time.monotonic()
    assert [to for to, _ in fake_gateway.received] == ["5511955550000"] * 3
    assert seen[3] - seen[2] > 4  # waited as the gateway asked
    time.sleep(1)
    (reply_id, status), = _rows(server, "SELECT m.id, m.status FROM messages m JOIN instances i "
                                "ON i.id = m.instance_id WHERE i.name=? AND m.direction='out'",
                                name)
    steps = httpx.get(f"{server.url}/api/messages/{reply_id}", headers=ADMIN).json()["journey"]
    errors = [s["detail"] for s in steps if s["event"] == "send_error"]
    assert [e["retry_in_s"] for e in errors] == [2, 5] and steps[-1]["event"] == "sent"
    assert status == "sent"


def test_a_lone_surrogate_or_nul_in_the_text_is_stored_readable(server: Server) -> None:
    """Valid JSON, not valid UTF-8: the insert failed (a 500, and the gateway resends)."""
    body = (b'{"event": "message", "id": "sur-1", "from": "5511977770000", '
            b'"text": "oi \\ud800\\u0000tudo bem?"}')
    resp = httpx.post(f"{server.url}/webhooks/simulator/demo", content=body,
                      headers={wire.SIGNATURE_HEADER: wire.sign(body, _instance_secret(server))})
    assert resp.status_code == 200
    assert _rows(server, "SELECT text FROM messages WHERE provider_message_id='sur-1'") == [
        ("oi ?tudo bem?",)]
    typed = httpx.post(f"{server.url}/simulator/api/demo/messages", headers={  # a validated body
        "Content-Type": "application/json"}, content=b'{"phone": "5511977770001", '
        b'"text": "oi \\ud800\\u0000tudo bem?"}')
    assert typed.status_code == 422 and "unicode" in typed.json()["detail"][0]["msg"]  # was 500
