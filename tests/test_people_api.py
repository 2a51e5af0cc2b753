"""Users and teams through the admin API, on each database: what an admin relies on when
setting up who answers and when. The teams' hours are what the conversation engine reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from server.routes import contact_data, people
from server.services import people as people_service
from server.settings import Settings

ADMIN = {"Authorization": "Bearer test-admin-token"}
HOURS = {"timezone": "America/Sao_Paulo", "hours": {"seg-sex": ["08:00-18:00"]},
         "closed": ["2025-12-25"]}


@pytest.fixture
def api(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The admin routes of people and contacts' data on the test database, the admin token set."""
    monkeypatch.setattr("server.settings._current", Settings(
        admin_token="test-admin-token", database_url=db_url, data_dir=tmp_path))
    app = FastAPI()
    app.include_router(contact_data.router)
    app.include_router(people.router)
    with TestClient(app) as client:
        yield client


def test_every_route_wants_the_admin_token(api: TestClient) -> None:
    for method, path in [("GET", "/api/users"), ("POST", "/api/users"), ("GET", "/api/teams"),
                         ("PATCH", "/api/teams/1"), ("PUT", "/api/teams/1/members/1"),
                         ("GET", "/api/tags"), ("GET", "/api/fields"),
                         ("PATCH", "/api/contacts/1/fields"), ("PUT", "/api/contacts/1/tags")]:
        assert api.request(method, path).status_code == 401, path
        assert api.request(method, path, headers={"Authorization": "Bearer nope"}
                           ).status_code == 401, path


def test_users_are_checked_kept_and_deactivated_never_deleted(api: TestClient) -> None:
    made = api.post("/api/users", headers=ADMIN,
                    json={"name": "Ana Souza", "email": "Ana.Souza@Loja.COM.br"})
    assert made.status_code == 201, made.text
    ana = made.json()
    assert ana["email"] == "ana.souza@loja.com.br" and ana["level"] == "agent"
    assert ana["active"] and not ana["online"] and "password_hash" not in ana
    # The same person under another case is a duplicate, told why.
    again = api.post("/api/users", headers=ADMIN,
                     json={"name": "Ana", "email": "ANA.SOUZA@loja.com.br"})
    assert again.status_code == 409 and "exists" in again.json()["detail"]
    bad = api.post("/api/users", headers=ADMIN, json={"name": "Bia", "email": "bia@@loja"})
    assert bad.status_code == 422 and "bia@@loja" in bad.json()["detail"]
    assert api.post("/api/users", headers=ADMIN, json={"name": "Bia", "email": "bia@loja.com",
                                                       "level": "boss"}).status_code == 422
    bia = api.post("/api/users", headers=ADMIN, json={"name": "Bia", "email": "bia@loja.com",
                                                      "level": "manager"}).json()
    taken = api.patch(f"/api/users/{bia['id']}", headers=ADMIN,
                      json={"email": "ana.souza@loja.com.br"})
    assert taken.status_code == 409 and "exists" in taken.json()["detail"]
    # Online, then deactivated: offline, still listed, and cannot come back online so.
    url = f"/api/users/{ana['id']}"
    assert api.patch(url, headers=ADMIN, json={"online": True}).json()["online"]
    off = api.patch(url, headers=ADMIN, json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    assert off.json()["online"] is False
    assert api.patch(url, headers=ADMIN, json={"online": True}).status_code == 409
    listed = api.get("/api/users", headers=ADMIN).json()
    assert [u["email"] for u in listed] == ["ana.souza@loja.com.br", "bia@loja.com"]
    assert all("password_hash" not in u for u in listed)
    assert api.patch("/api/users/999", headers=ADMIN, json={"name": "X"}).status_code == 404


def test_teams_hours_are_checked_when_saved_and_read_as_schedules(
        api: TestClient, sessions: sessionmaker[Session]) -> None:
    for hours, said in [({"hours": {"seg-sex": ["18:00-08:00"]}}, "closes before it opens"),
                        ({"hours": {"feriados": ["08:00-18:00"]}}, "is not a day"),
                        ({"hours": {"seg": ["8h-18h"]}}, "is not an interval"),
                        ({"timezone": "America/Recife_", "hours": {"seg": ["08:00-18:00"]}},
                         "no time zone"),
                        ({"hour": {"seg": ["08:00-18:00"]}}, "unknown keys"),
                        ({"hours": {}}, "never be open")]:
        refused = api.post("/api/teams", headers=ADMIN, json={"name": "Vendas", "hours": hours})
        assert refused.status_code == 422, hours
        assert said in refused.json()["detail"], refused.json()
    assert api.post("/api/teams", headers=ADMIN, json={"name": "Vendas",
                                                       "closed_window_minutes": 0}
                    ).status_code == 422
    made = api.post("/api/teams", headers=ADMIN, json={
        "name": "Vendas", "hours": HOURS, "closed_message": "Voltamos às 8h."})
    assert made.status_code == 201, made.text
    team = made.json()
    assert team["hours"] == HOURS and team["members"] == []
    assert team["closed_window_minutes"] == 720
    assert api.post("/api/teams", headers=ADMIN, json={"name": "Vendas"}).status_code == 409
    other = api.post("/api/teams", headers=ADMIN, json={"name": "Suporte"}).json()
    assert api.patch(f"/api/teams/{other['id']}", headers=ADMIN,
                     json={"name": "Vendas"}).status_code == 409
    with sessions() as s:
        schedules = people_service.schedules(s)
    assert set(schedules) == {"Vendas"}  # Suporte has no hours: always open
    zone = ZoneInfo("America/Sao_Paulo")
    assert schedules["Vendas"].is_open(datetime(2025, 12, 24, 10, tzinfo=zone))
    assert not schedules["Vendas"].is_open(datetime(2025, 12, 25, 10, tzinfo=zone))
    assert not schedules["Vendas"].is_open(datetime(2025, 12, 27, 10, tzinfo=zone))  # Saturday
    # Back to always open.
    cleared = api.patch(f"/api/teams/{team['id']}", headers=ADMIN, json={"hours": None})
    assert cleared.status_code == 200 and cleared.json()["hours"] is None
    with sessions() as s:
        assert people_service.schedules(s) == {}


def test_team_members_come_and_go(api: TestClient, sessions: sessionmaker[Session]) -> None:
    team = api.post("/api/teams", headers=ADMIN, json={"name": "Suporte"}).json()
    ids = [api.post("/api/users", headers=ADMIN, json={"name": n, "email": f"{n}@loja.com"}
                    ).json()["id"] for n in ("bruno", "carla")]
    url = f"/api/teams/{team['id']}/members"
    for user_id in (*ids, ids[0]):  # a second PUT changes nothing
        assert api.put(f"{url}/{user_id}", headers=ADMIN).status_code == 200
    listed = api.get("/api/teams", headers=ADMIN).json()
    assert [m["name"] for m in listed[0]["members"]] == ["bruno", "carla"]
    assert api.delete(f"{url}/{ids[0]}", headers=ADMIN).status_code == 204
    assert api.put(f"{url}/999", headers=ADMIN).status_code == 404
    assert api.put(f"/api/teams/999/members/{ids[0]}", headers=ADMIN).status_code == 404
    with sessions() as s:
        found = people_service.get_team_by_name(s, "Suporte")
        assert found is not None and found.id == team["id"]
        assert [u.name for u in people_service.members(s, [found.id])[found.id]] == ["carla"]
        assert people_service.get_team_by_name(s, "suporte ") is None


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(api: TestClient) -> None:
    """Otherwise no one could add users, numbers or teams again short of the server's CLI."""
    ana = api.post("/api/users", headers=ADMIN, json={"name": "Ana", "email": "ana@loja.com",
                                                      "level": "admin"}).json()
    url = f"/api/users/{ana['id']}"
    for change in ({"level": "manager"}, {"active": False}):
        refused = api.patch(url, headers=ADMIN, json=change)
        assert refused.status_code == 409 and "last active admin" in refused.json()["detail"]
    assert api.get("/api/users", headers=ADMIN).json()[0]["level"] == "admin"  # nothing kept
    bia = api.post("/api/users", headers=ADMIN, json={"name": "Bia", "email": "bia@loja.com",
                                                      "level": "admin"}).json()
    assert api.patch(url, headers=ADMIN, json={"level": "manager"}).status_code == 200
    assert api.patch(f"/api/users/{bia['id']}", headers=ADMIN,
                     json={"active": False}).status_code == 409  # now Bia is the last one


def test_renaming_a_team_carries_the_flows_that_name_it(
        api: TestClient, sessions: sessionmaker[Session]) -> None:
    """Left naming the old name, a flow's handoff went to the common queue and its hours
    condition read as always open, without a word to anyone."""
    import flows
    from server.services import flow_store

    team = api.post("/api/teams", headers=ADMIN, json={"name": "Trocas", "hours": HOURS}).json()
    api.post("/api/teams", headers=ADMIN, json={"name": "Trocas e devoluções"})  # a neighbour
    flow = flows.from_dict({"id": "loja", "start": "horario", "nodes": {
        "horario": {"kind": "condition", "otherwise": "fechado", "branches": [
            {"when": {"business_hours": "Trocas"}, "next": "pessoa"}]},
        "pessoa": {"kind": "handoff", "team": "trocas", "text": "Vou te passar."},
        "fechado": {"kind": "http", "url": "https://erp.example/aviso", "method": "POST",
                    "body": {"business_hours": "Trocas"}, "next": "outra", "on_error": "outra"},
        "outra": {"kind": "handoff", "team": "Trocas e devoluções"}}})
    with sessions.begin() as s:
        flow_store.save(s, flow)
    renamed = api.patch(f"/api/teams/{team['id']}", headers=ADMIN, json={"name": "Pós-venda"})
    assert renamed.status_code == 200, renamed.text
    with sessions() as s:
        row = flow_store.get(s, "loja")
        assert row is not None and row.version == 2
        nodes = flow_store.load(s, "loja").nodes
    assert nodes["pessoa"].team == "Pós-venda"  # type: ignore[union-attr]
    assert nodes["horario"].branches[0].when[0].schedule == "Pós-venda"  # type: ignore[union-attr]
    assert nodes["outra"].team == "Trocas e devoluções"  # type: ignore[union-attr]
    assert nodes["fechado"].body == {"business_hours": "Trocas"}  # type: ignore[union-attr]
    hours_only = api.patch(f"/api/teams/{team['id']}", headers=ADMIN, json={"hours": None})
    assert hours_only.status_code == 200
    with sessions() as s:
        assert flow_store.get(s, "loja").version == 2  # type: ignore[union-attr]
