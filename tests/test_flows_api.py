"""Flows as data through the admin API and `atende flows`: imported as YAML, listed, exported
back equal, edited as JSON, switched off, refused with the path of each problem, checked against
the company's custom fields and team hours, and kept while a number starts it by default."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

import flows
from server import runtime
from server.app import create_app
from server.cli import flows as flows_cli
from server.schema import CustomField, Team
from server.services import flow_store
from server.settings import Settings, get_settings, use_settings
from tests.conftest import ROOT

ADMIN = {"Authorization": "Bearer test-admin-token"}
YAML = {**ADMIN, "Content-Type": "application/yaml"}
AURORA = ROOT / "demo" / "loja-aurora" / "flow.yaml"
URL = "/api/flows"
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

# A target that is not a node, a node nothing reaches, and a custom field no one declared.
BROKEN = """\
id: quebrado
start: menu
nodes:
  menu:
    kind: menu
    text: "1 ou 2?"
    options: [{text: Um, next: fim}, {text: Dois, next: sumiu}]
    on_fail: fim
  fim:
    kind: end
    text: "Até logo, {{fields.apelido}}!"
  solto:
    kind: end
"""
BROKEN_PATHS = {"nodes.menu.options[1].next", "nodes.solto", "nodes.fim.text"}
USES_CPF = """\
id: confere-cpf
start: fim
nodes:
  fim: {kind: end, text: "Seu CPF é {{fields.cpf}}"}
"""
HOURS = """\
id: horario
start: aberto
nodes:
  aberto:
    kind: condition
    branches: [{when: {business_hours: comercial}, next: dentro}]
    otherwise: fora
  dentro: {kind: end, text: Estamos abertos}
  fora: {kind: end, text: Estamos fechados}
"""


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app on the test database (no lifespan: the database is migrated, no model loads)."""
    saved = get_settings()
    settings = use_settings(Settings(data_dir=tmp_path, database_url=db_url,
                                     admin_token="test-admin-token"))
    try:
        yield TestClient(create_app(settings))
    finally:
        use_settings(saved)


@pytest.fixture
def aurora_company(sessions: sessionmaker[Session]) -> None:
    """What the demo flow stores into and hands off to: its custom fields and its teams."""
    with sessions.begin() as s:
        for key in ("pedido", "cpf", "email"):
            s.add(CustomField(key=key, label=key, type="text"))
        for name in ("trocas", "atendimento"):
            s.add(Team(name=name))


def _paths(resp: Any) -> set[str]:
    """The paths a 422 names; each problem says what is wrong."""
    detail = resp.json()["detail"]
    assert all(set(p) == {"path", "problem"} and p["problem"] for p in detail), detail
    return {p["path"] for p in detail}


def test_import_list_export_edit_and_switch_off(client: TestClient,
                                                sessions: sessionmaker[Session],
                                                aurora_company: None) -> None:
    original = AURORA.read_text(encoding="utf-8")
    made = client.post(f"{URL}/import", content=original.encode(), headers=YAML)
    assert made.status_code == 201, made.text
    assert made.json() | {"updated_at": None} == {
        "key": "loja-aurora", "name": "Loja Aurora — atendimento", "enabled": True,
        "version": 1, "updated_at": None, "nodes": 7,
        "triggers": ["oi", "olá", "ola", "bom dia", "boa tarde", "boa noite", "menu", "início"]}
    listed = client.get(URL, headers=ADMIN).json()
    assert listed == [made.json()]
    # The JSON dict form, and the YAML export: both read back as the flow imported.
    as_dict = client.get(f"{URL}/loja-aurora", headers=ADMIN).json()
    assert as_dict == flows.to_dict(flows.from_yaml(original))
    export = client.get(f"{URL}/loja-aurora/export", headers=ADMIN)
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("application/yaml")
    assert 'filename="loja-aurora.yaml"' in export.headers["content-disposition"]
    assert flows.from_yaml(export.text) == flows.from_yaml(original)
    # Importing the export again replaces it: same flow, next version.
    again = client.post(f"{URL}/import", content=export.content,
                        headers={**ADMIN, "Content-Type": "text/yaml; charset=utf-8"})
    assert again.status_code == 200 and again.json()["version"] == 2
    # Edited as JSON: the id in the body is the one in the address.
    as_dict["name"] = "Loja Aurora"
    moved = client.put(f"{URL}/outra", json=as_dict, headers=ADMIN)
    assert moved.status_code == 422 and _paths(moved) == {"id"}
    put = client.put(f"{URL}/loja-aurora", json=as_dict, headers=ADMIN)
    assert put.status_code == 200 and put.json()["version"] == 3
    assert put.json()["name"] == "Loja Aurora"
    # Switched off: listed so, and no longer among the flows that may start.
    off = client.patch(f"{URL}/loja-aurora", json={"enabled": False}, headers=ADMIN)
    assert off.status_code == 200 and off.json()["enabled"] is False
    with sessions() as s:
        assert flow_store.enabled_flows(s) == []
        assert flow_store.load(s, "loja-aurora").name == "Loja Aurora"
    # Importing it again does not switch it back on.
    assert client.post(f"{URL}/import", content=original.encode(),
                       headers=YAML).json()["enabled"] is False
    assert client.patch(f"{URL}/loja-aurora", json={"enabled": True},
                        headers=ADMIN).json()["enabled"] is True
    with sessions() as s:
        assert [f.id for f in flow_store.enabled_flows(s)] == ["loja-aurora"]
    assert client.delete(f"{URL}/loja-aurora", headers=ADMIN).status_code == 204
    assert client.get(f"{URL}/loja-aurora", headers=ADMIN).status_code == 404
    assert client.get(URL, headers=ADMIN).json() == []


def test_a_broken_flow_is_refused_naming_each_bad_node(client: TestClient,
                                                       aurora_company: None) -> None:
    resp = client.post(f"{URL}/import", content=BROKEN.encode(), headers=YAML)
    assert resp.status_code == 422
    assert _paths(resp) == BROKEN_PATHS
    as_json = flows.to_dict(flows.from_yaml(BROKEN))
    assert _paths(client.put(f"{URL}/quebrado", json=as_json, headers=ADMIN)) == BROKEN_PATHS
    assert client.get(URL, headers=ADMIN).json() == []
    # /validate says the same, as an answer, and keeps nothing.
    for body, kind in ((BROKEN, "application/yaml"), (json.dumps(as_json), "application/json")):
        checked = client.post(f"{URL}/validate", content=body.encode(),
                              headers={**ADMIN, "Content-Type": kind})
        assert checked.status_code == 200 and checked.json()["valid"] is False
        assert {p["path"] for p in checked.json()["problems"]} == BROKEN_PATHS
    good = client.post(f"{URL}/validate", content=AURORA.read_bytes(), headers=YAML)
    assert good.json() == {"valid": True, "problems": []}
    assert client.get(URL, headers=ADMIN).json() == []


@sqlite_only
def test_a_flow_reading_a_field_waits_for_the_field_and_hours_for_the_team(
        client: TestClient, sessions: sessionmaker[Session]) -> None:
    refused = client.post(f"{URL}/import", content=USES_CPF.encode(), headers=YAML)
    assert refused.status_code == 422 and _paths(refused) == {"nodes.fim.text"}
    assert "fields.cpf" in refused.text
    # Storing into a field the company never declared is refused too, and so is a handoff to a
    # team that does not exist: typos caught when the flow is saved, not by a customer.
    stores = client.post(f"{URL}/import", content=AURORA.read_bytes(), headers=YAML)
    assert stores.status_code == 422
    assert {"nodes.pedido", "nodes.cpf", "nodes.email", "nodes.trocas.team",
            "nodes.atendente.team"} <= _paths(stores)
    closed = client.post(f"{URL}/import", content=HOURS.encode(), headers=YAML)
    assert _paths(closed) == {"nodes.aberto.branches[0].when[0].business_hours"}
    with sessions.begin() as s:
        s.add(CustomField(key="cpf", label="CPF", type="text"))
        s.add(Team(name="comercial", hours={"timezone": "America/Sao_Paulo",
                                            "hours": {"seg-sex": ["08:00-18:00"]}}))
    assert client.post(f"{URL}/import", content=USES_CPF.encode(),
                       headers=YAML).status_code == 201
    assert client.post(f"{URL}/import", content=HOURS.encode(), headers=YAML).status_code == 201
    with sessions() as s:
        company = flow_store.context_for_validation(s)
    assert company.fields == {"cpf"} and set(company.schedules) == {"comercial"}


@sqlite_only
def test_what_cannot_be_read_is_a_4xx_never_a_500(client: TestClient) -> None:
    assert client.get(URL).status_code == 401
    assert client.post(f"{URL}/import", content=b"id: x", headers={
        "Content-Type": "application/yaml"}).status_code == 401
    bad = client.post(f"{URL}/import", content=b"id: [unclosed\nstart: a", headers=YAML)
    assert bad.status_code == 422 and _paths(bad) == {"yaml"}
    assert "not valid YAML" in bad.text and "line" in bad.text  # the parser's own words
    deep = b"[" * 50_000 + b"]" * 50_000  # PyYAML alone takes minutes over these
    stairs = b"".join(b"  " * i + b"k:\n" for i in range(200))
    for body in (b"- just\n- a list\n", b"", b"\xff\xfe not utf-8", b"[" * 100_000, deep,
                 stairs):
        resp = client.post(f"{URL}/import", content=body, headers=YAML)
        assert resp.status_code == 422, (body[:20], resp.text)
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    assert _paths(client.post(f"{URL}/import", content=laughs.encode(), headers=YAML)) == {
        "yaml"}
    wrong_type = client.post(f"{URL}/import", content=b"<flow/>",
                             headers={**ADMIN, "Content-Type": "application/xml"})
    assert wrong_type.status_code == 415
    too_big = client.post(f"{URL}/import", content=b"#" * 1_000_001, headers=YAML)
    assert too_big.status_code == 413
    bad_json = client.put(f"{URL}/x", content=b"{nope", headers={
        **ADMIN, "Content-Type": "application/json"})
    assert bad_json.status_code == 422 and _paths(bad_json) == {"json"}
    weird_id = BROKEN.replace("id: quebrado", "id: com espaço")
    assert "id" in _paths(client.post(f"{URL}/import", content=weird_id.encode(), headers=YAML))
    assert client.patch(f"{URL}/nada", json={"enabled": False}, headers=ADMIN).status_code == 404
    assert client.delete(f"{URL}/nada", headers=ADMIN).status_code == 404
    assert client.get(f"{URL}/nada/export", headers=ADMIN).status_code == 404


def test_a_numbers_default_flow_must_exist_and_stays_while_used(
        client: TestClient, monkeypatch: pytest.MonkeyPatch, aurora_company: None) -> None:
    monkeypatch.setattr(runtime, "current", lambda: SimpleNamespace(models={"local": None}))
    number = {"name": "loja-01", "provider": "evolution", "api_url": "http://127.0.0.1:9",
              "api_key": "k" * 12, "default_flow": "loja-aurora"}
    unknown = client.post("/api/instances", json=number, headers=ADMIN)
    assert unknown.status_code == 409 and "'loja-aurora'" in unknown.json()["detail"]
    assert client.post(f"{URL}/import", content=AURORA.read_bytes(),
                       headers=YAML).status_code == 201
    made = client.post("/api/instances", json=number, headers=ADMIN)
    assert made.status_code == 201, made.text
    assert made.json()["default_flow"] == "loja-aurora"
    in_use = client.delete(f"{URL}/loja-aurora", headers=ADMIN)
    assert in_use.status_code == 409 and "loja-01" in in_use.json()["detail"]
    nope = client.patch("/api/instances/loja-01", json={"default_flow": "sumiu"}, headers=ADMIN)
    assert nope.status_code == 409 and "'sumiu'" in nope.json()["detail"]
    assert client.get("/api/instances/loja-01",
                      headers=ADMIN).json()["default_flow"] == "loja-aurora"
    back = client.patch("/api/instances/loja-01", json={"default_flow": None}, headers=ADMIN)
    assert back.status_code == 200 and back.json()["default_flow"] is None
    assert client.delete(f"{URL}/loja-aurora", headers=ADMIN).status_code == 204


@pytest.fixture
def cli_db(db_url: str, tmp_path: Path) -> Iterator[None]:
    saved = get_settings()
    use_settings(Settings(data_dir=tmp_path, database_url=db_url))
    try:
        yield
    finally:
        use_settings(saved)


@sqlite_only
def test_cli_validates_imports_lists_and_exports(cli_db: None, tmp_path: Path,
                                                 aurora_company: None) -> None:
    runner = CliRunner()
    broken = tmp_path / "quebrado.yaml"
    broken.write_text(BROKEN, encoding="utf-8")
    report = tmp_path / "problems.json"
    out = runner.invoke(flows_cli.app, ["validate", str(broken), "--json", str(report)])
    assert out.exit_code == 1
    assert "nodes.menu.options[1].next" in out.output and "nodes.solto" in out.output
    assert {p["path"] for p in json.loads(report.read_text())} == BROKEN_PATHS
    assert runner.invoke(flows_cli.app, ["import", str(broken)]).exit_code == 1
    garbled = tmp_path / "garbled.yaml"
    garbled.write_text("id: [", encoding="utf-8")
    out = runner.invoke(flows_cli.app, ["validate", str(garbled), "--json", str(report)])
    assert out.exit_code == 1 and [p["path"] for p in json.loads(report.read_text())] == ["yaml"]
    out = runner.invoke(flows_cli.app, ["validate", str(AURORA), "--json", str(report)])
    assert out.exit_code == 0, out.output
    assert json.loads(report.read_text()) == []
    cpf = tmp_path / "cpf.yaml"
    cpf.write_text(USES_CPF, encoding="utf-8")
    assert runner.invoke(flows_cli.app, ["validate", str(cpf), "--offline"]).exit_code == 1
    out = runner.invoke(flows_cli.app, ["import", str(AURORA)])
    assert out.exit_code == 0 and "version 1" in out.output, out.output
    assert "loja-aurora" in runner.invoke(flows_cli.app, ["list"]).output
    exported = tmp_path / "out.yaml"
    out = runner.invoke(flows_cli.app, ["export", "loja-aurora", "-o", str(exported)])
    assert out.exit_code == 0, out.output
    assert flows.from_yaml(exported.read_text(encoding="utf-8")) == flows.from_yaml(
        AURORA.read_text(encoding="utf-8"))
    assert runner.invoke(flows_cli.app, ["export", "sumiu"]).exit_code == 2


@sqlite_only
def test_demo_install_creates_the_shop_once_and_keeps_edits(cli_db: None,
                                                           sessions: sessionmaker[Session]
                                                           ) -> None:
    from server.cli import app as atende

    runner = CliRunner()
    first = runner.invoke(atende, ["demo", "install", "--folder", str(AURORA.parent)])
    assert first.exit_code == 0, first.output
    assert "flow loja-aurora" in first.output and "team trocas" in first.output
    with sessions.begin() as s:
        flow_store.set_enabled(s, "loja-aurora", False)  # a manager's edit
    again = runner.invoke(atende, ["demo", "install", "--folder", str(AURORA.parent)])
    assert again.exit_code == 0 and "already installed" in again.output
    with sessions() as s:
        assert flow_store.get(s, "loja-aurora").enabled is False  # type: ignore[union-attr]
        from server.schema import Instance
        assert s.query(Instance).filter_by(name="demo").one().default_flow == "loja-aurora"
