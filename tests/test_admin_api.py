"""The admin API's listings on the running server: the connected numbers with how the assistant
works on each (never their secrets), and the knowledge bases with their documents. The server is
shared: what a test adds it takes away."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import delete, select

from server.db import sessions_for
from server.schema import Instance
from server.secretbox import unseal
from server.services import instances
from tests import docs_factory as make
from tests.conftest import DEMO_DOCS, Server
from tests.test_message_path import _rows

ADMIN = {"Authorization": "Bearer test-admin-token"}
DEFAULTS = {"provider": "simulator", "ai_enabled": True, "kb_collection": None, "model": None,
            "fallback_models": None, "max_tokens": None, "temperature": None, "persona": None,
            "budget_daily_usd": None, "budget_monthly_usd": None}


@pytest.fixture
def own_number(server: Server) -> Iterator[str]:
    """A number of this test's own in the server's database (named to sort before "demo"),
    removed afterwards."""
    name = f"adm-{uuid.uuid4().hex[:8]}"
    sessions = sessions_for(server.db_url)
    instances.ensure_simulator(sessions, name, "http://127.0.0.1:9")
    yield name
    with sessions.begin() as s:
        s.execute(delete(Instance).where(Instance.name == name))


def _pick(instance: dict, fields: dict) -> dict:  # type: ignore[type-arg]
    """The instance's name, provider and assistant settings, of all it lists."""
    return {k: instance[k] for k in ("name", *fields)}


def test_instances_lists_each_number_and_how_the_assistant_works_on_it(
        server: Server, own_number: str) -> None:
    url = f"{server.url}/api/instances"
    assert httpx.get(url).status_code == 401
    with sessions_for(server.db_url).begin() as s:  # set as `PATCH` or the CLI would
        inst = s.scalars(select(Instance).where(Instance.name == own_number)).one()
        inst.ai_enabled, inst.kb_collection, inst.model = False, "loja2", "local"
        inst.fallback_models, inst.max_tokens, inst.temperature = ["local"], 64, 0.2
        inst.persona, inst.budget_daily_usd, inst.budget_monthly_usd = "Gabriel.", 1.5, 20.0
    resp = httpx.get(url, headers=ADMIN)
    assert resp.status_code == 200
    listed = resp.json()
    names = [i["name"] for i in listed]
    assert names == sorted(names) and names.index(own_number) < names.index("demo")
    by_name = {i["name"]: i for i in listed}
    assert _pick(by_name["demo"], DEFAULTS) == {"name": "demo", **DEFAULTS}  # as serving made it
    assert by_name["demo"]["connection"]["state"] == "connected"  # the simulator is in process
    assert not {"api_key", "webhook_secret", "verify_token"} & by_name["demo"].keys()
    assert _pick(by_name[own_number], DEFAULTS) == {
        "name": own_number, "provider": "simulator", "ai_enabled": False,
        "kb_collection": "loja2", "model": "local", "fallback_models": ["local"],
        "max_tokens": 64, "temperature": 0.2, "persona": "Gabriel.", "budget_daily_usd": 1.5,
        "budget_monthly_usd": 20.0}
    # The number's credentials never leave: neither sealed nor in the clear.
    for secret, key in _rows(server, "SELECT webhook_secret, api_key FROM instances"):
        for value in (secret, key, unseal(secret), key and unseal(key)):
            assert not value or value not in resp.text
    # A change through the API is what the list shows next.
    patched = httpx.patch(f"{url}/{own_number}", headers=ADMIN, json={"max_tokens": None})
    assert patched.status_code == 200
    again = {i["name"]: i for i in httpx.get(url, headers=ADMIN).json()}
    assert again[own_number] == {**by_name[own_number], "max_tokens": None}


def test_kb_lists_each_knowledge_base_with_its_documents(server: Server) -> None:
    url = f"{server.url}/api/kb"
    assert httpx.get(url).status_code == 401
    listed = httpx.get(url, headers=ADMIN).json()
    # The demo shop's documents, ingested as `make run` does, each with its passages.
    default = listed["default"]
    assert set(default) == {f.name for f in DEMO_DOCS.glob("*.md")}
    assert all(n > 0 for n in default.values())
    assert default == httpx.get(f"{url}/default/documents", headers=ADMIN).json()
    # A knowledge base of this test's own appears with what was uploaded, and loses it again.
    name = f"adm{uuid.uuid4().hex[:8]}"
    files = [("files", ("horario.md", b"# Atendimento\n\nAtendemos de segunda a sexta, "
                        b"das 9h as 18h.", "text/markdown")),
             ("files", ("troca.pdf", make.pdf(["Trocas", "A troca pode ser pedida em ate "
                                               "30 dias."]), "application/pdf"))]
    up = httpx.post(f"{url}/{name}/documents", files=files, headers=ADMIN, timeout=60)
    assert up.status_code == 200, up.text
    chunks = {r["doc"]: r["chunks"] for r in up.json()}
    try:
        listed = httpx.get(url, headers=ADMIN).json()
        assert listed[name] == chunks and all(n > 0 for n in chunks.values())
        assert listed["default"] == default  # the others are as they were
    finally:
        for doc in chunks:
            httpx.delete(f"{url}/{name}/documents/{doc}", headers=ADMIN)
    assert httpx.get(url, headers=ADMIN).json().get(name, {}) == {}
