"""What a webhook or an admin request can get wrong, over HTTP against a real running server:
each is refused with a clear 4xx and nothing is stored; and what the server says about itself."""

from __future__ import annotations

import httpx
import pytest

from gateway_bridge import simulator as wire
from tests.conftest import ATENDE, ROOT, Server, server_env
from tests.test_message_path import ADMIN, _instance_secret, _rows, _signed_post


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
    try:
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
        assert httpx.delete(f"{url}/horario.pdf", headers=ADMIN).json() == {
            "removed_passages": 1}
        assert httpx.delete(f"{url}/horario.pdf", headers=ADMIN).status_code == 404
    finally:  # the server is shared: its knowledge bases hold what they held
        httpx.delete(f"{url}/horario.pdf", headers=ADMIN)


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
