"""The contact list's filter on each database: every kind of condition, their combinations, the
paging and count, and scoping (an agent finds only the contacts of the conversations they may
see, whatever they filter by). The API answers the same filter from query parameters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from server.db import sessions_for
from server.routes import contact_data as contact_data_routes
from server.routes import contacts as contact_routes
from server.schema import Contact, ContactIdentity, Conversation, Instance, Message, Team
from server.services import (
    access,
    contact_card,
    contact_csv,
    contact_data,
    contact_search,
    instances,
)
from server.services.access import Principal
from server.services.contact_checks import Refused
from server.services.contact_search import ContactFilter, FieldCondition
from server.settings import Settings
from tests.conftest import fresh_database, migrated_over, raw_sql

ADMIN = Principal(level="admin", name="admin")
NOW = datetime.now(UTC)


@pytest.fixture
def api(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The contacts API on the test database, called with the admin token."""
    monkeypatch.setattr("server.settings._current", Settings(
        admin_token="test-admin-token", database_url=db_url, data_dir=tmp_path))
    app = FastAPI()
    app.include_router(contact_routes.router)
    app.include_router(contact_data_routes.router)
    with TestClient(app, headers={"Authorization": "Bearer test-admin-token"}) as client:
        yield client


def _world(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Five customers on two numbers and two teams, tagged and with fields:

    ana    loja  atendimento  vip, sp      plano Ouro, renda 5000, nascimento 10/05/1990, open
    bruno  loja  trocas       vip          plano Básico, renda 1200,50                    closed
    carla  loja  no team      sp           obs "cliente antiga"                           open
    davi   outra atendimento  vip, sp, rj  plano Ouro, nascimento 01/01/2000             closed
    eva    (never wrote: imported)         renda 800
    """
    loja = instances.ensure_simulator(sessions, "loja", "http://127.0.0.1:9").id
    outra = instances.ensure_simulator(sessions, "outra", "http://127.0.0.1:9").id
    with sessions.begin() as s:
        contact_data.create_field(s, "plano", "Plano", "choice", ["Básico", "Ouro"])
        contact_data.create_field(s, "renda", "Renda", "number")
        contact_data.create_field(s, "nascimento", "Nascimento", "date")
        contact_data.create_field(s, "obs", "Observações", "text")
        a, t = Team(name="atendimento"), Team(name="trocas")
        s.add_all([a, t])
        s.flush()
        people = {}
        for name, phone, inst, team, status, days in [
                ("Ana Souza", "5511987650001", loja, a.id, "open", 1),
                ("Bruno Lima", "5511987650002", loja, t.id, "closed", 40),
                ("Carla Dias", "5521987650003", loja, None, "assigned", 3),
                ("Davi Rocha", "5531987650004", outra, a.id, "closed", 10),
                ("Eva Nunes", "5511987650005", None, None, "", 0)]:
            contact = Contact(name=name, phone=phone)
            s.add(contact)
            s.flush()
            s.add(ContactIdentity(contact_id=contact.id, kind="phone", value=phone))
            if inst is not None:
                s.add(Conversation(contact_id=contact.id, instance_id=inst, address=phone,
                                   team_id=team, status=status,
                                   last_inbound_at=NOW - timedelta(days=days)))
            people[name.split()[0].lower()] = contact.id
        for who, tags in [("ana", ["vip", "sp"]), ("bruno", ["VIP"]), ("carla", ["sp"]),
                          ("davi", ["vip", "sp", "rj"])]:
            for tag in tags:
                contact_data.set_tag(s, people[who], tag)
        for who, values in [("ana", {"plano": "ouro", "renda": "5.000",
                                     "nascimento": "10/05/1990"}),
                            ("bruno", {"plano": "Básico", "renda": "1.200,50"}),
                            ("carla", {"obs": "Cliente antiga, prefere áudio"}),
                            ("davi", {"plano": "Ouro", "nascimento": "01/01/2000"}),
                            ("eva", {"renda": "800"})]:
            contact_data.set_fields(s, people[who], values)
        people["atendimento"], people["trocas"] = a.id, t.id
    return people


def _names(sessions: sessionmaker[Session], f: ContactFilter, who: Principal = ADMIN) -> list[str]:
    with sessions() as s:
        page = contact_search.search(s, who, f)
    names = [r.name.split()[0].lower() for r in page.rows if r.name]
    assert page.total == len(names)
    return sorted(names)


def test_each_kind_of_condition_finds_its_contacts(sessions: sessionmaker[Session]) -> None:
    _world(sessions)
    cases: list[tuple[ContactFilter, list[str]]] = [
        (ContactFilter(), ["ana", "bruno", "carla", "davi", "eva"]),
        (ContactFilter(tags=("vip",)), ["ana", "bruno", "davi"]),
        (ContactFilter(tags=("Vip", "rj"), tag_mode="any"), ["ana", "bruno", "davi"]),
        (ContactFilter(tags=("vip", "sp"), tag_mode="all"), ["ana", "davi"]),
        (ContactFilter(tags=("vip", "nunca-existiu"), tag_mode="all"), []),
        (ContactFilter(tags=("vip",), tag_mode="none"), ["carla", "eva"]),
        (ContactFilter(fields=(FieldCondition("plano", "eq", "OURO"),)), ["ana", "davi"]),
        (ContactFilter(fields=(FieldCondition("renda", "gt", "1.000"),)), ["ana", "bruno"]),
        (ContactFilter(fields=(FieldCondition("renda", "lt", "1200,5"),)), ["eva"]),
        (ContactFilter(fields=(FieldCondition("renda", "eq", "1200,50"),)), ["bruno"]),
        (ContactFilter(fields=(FieldCondition("nascimento", "gt", "31/12/1995"),)), ["davi"]),
        (ContactFilter(fields=(FieldCondition("nascimento", "lt", "31/12/1995"),)), ["ana"]),
        (ContactFilter(fields=(FieldCondition("obs", "contains", "ANTIGA"),)), ["carla"]),
        (ContactFilter(fields=(FieldCondition("obs", "contains", "%"),)), []),
        (ContactFilter(fields=(FieldCondition("plano", "set"),)), ["ana", "bruno", "davi"]),
        (ContactFilter(fields=(FieldCondition("plano", "unset"),)), ["carla", "eva"]),
        (ContactFilter(instance="outra"), ["davi"]),
        (ContactFilter(last_from=(NOW - timedelta(days=5)).date()), ["ana", "carla"]),
        (ContactFilter(last_from=(NOW - timedelta(days=20)).date(),
                       last_to=(NOW - timedelta(days=2)).date()), ["carla", "davi"]),
        (ContactFilter(open=True), ["ana", "carla"]),
        (ContactFilter(open=False), ["bruno", "davi", "eva"]),
        (ContactFilter(q="souza"), ["ana"]),
        (ContactFilter(q="(21) 98765-0003"), ["carla"]),
        (ContactFilter(q="8765 0004"), ["davi"]),
        (ContactFilter(q="55 11 8765-0001"), ["ana"]),  # the old 8-digit form of her mobile
        (ContactFilter(q="100%_"), []),
    ]
    for f, expected in cases:
        assert _names(sessions, f) == expected, f


def test_conditions_combine_and_each_narrows(sessions: sessionmaker[Session]) -> None:
    _world(sessions)
    two_tags_one_field = ContactFilter(tags=("vip", "sp"), tag_mode="all",
                                       fields=(FieldCondition("plano", "eq", "Ouro"),))
    assert _names(sessions, two_tags_one_field) == ["ana", "davi"]
    assert _names(sessions, ContactFilter(
        tags=("vip", "sp"), tag_mode="all", fields=(
            FieldCondition("plano", "eq", "Ouro"),
            FieldCondition("nascimento", "lt", "01/01/1999")),
        instance="loja", open=True, q="ana")) == ["ana"]
    assert _names(sessions, ContactFilter(tags=("sp",), tag_mode="none",
                                          fields=(FieldCondition("renda", "set"),))) == [
        "bruno", "eva"]


def test_an_agent_finds_only_their_teams_contacts(sessions: sessionmaker[Session]) -> None:
    ids = _world(sessions)
    agent = Principal(level="agent", user_id=None, teams=frozenset({ids["atendimento"]}))
    trocas = Principal(level="agent", user_id=None, teams=frozenset({ids["trocas"]}))
    # Atendimento's, the common queue's (carla: no team), and those who never wrote (eva: no
    # chat yet, imported: no team's, so anyone may greet her); never trocas' (bruno).
    assert _names(sessions, ContactFilter(), agent) == ["ana", "carla", "davi", "eva"]
    assert _names(sessions, ContactFilter(tags=("vip",)), agent) == ["ana", "davi"]
    assert _names(sessions, ContactFilter(q="bruno"), agent) == []
    assert _names(sessions, ContactFilter(tags=("vip",)), trocas) == ["bruno"]
    assert _names(sessions, ContactFilter(open=False), trocas) == ["bruno", "eva"]
    with sessions() as s:
        eva, bruno = (s.scalar(select(Contact.id).where(Contact.name == n)) for n in (
            "Eva Nunes", "Bruno Lima"))
        assert access.sees_contact(s, agent, eva) and not access.sees_contact(s, agent, bruno)


def test_a_contact_shows_only_the_conversations_the_caller_may_see(
        sessions: sessionmaker[Session]) -> None:
    """Ana is atendimento's on one number and trocas' on the other: atendimento's agent sees
    her card with the one conversation and its messages, never the other's."""
    ids = _world(sessions)
    with sessions.begin() as s:
        outra = s.scalar(select(Instance.id).where(Instance.name == "outra"))
        assert outra is not None
        mine = s.scalar(select(Conversation).where(Conversation.contact_id == ids["ana"]))
        assert mine is not None
        theirs = Conversation(contact_id=ids["ana"], instance_id=outra, address="5511987650001",
                              team_id=ids["trocas"], status="queued")
        s.add(theirs)
        s.flush()
        for conv, text in ((mine, "oi, sobre a entrega"), (theirs, "quero trocar o sofá")):
            s.add(Message(instance_id=conv.instance_id, conversation_id=conv.id, direction="in",
                          author="customer", text=text, status="answered"))
        mine_id, theirs_id = mine.id, theirs.id
    agent = Principal(level="agent", user_id=None, teams=frozenset({ids["atendimento"]}))
    with sessions() as s:
        assert [t.id for t in contact_card.card(s, agent, ids["ana"]).threads] == [mine_id]
        assert [x.text for x in contact_card.history(s, agent, ids["ana"])[0]] == [
            "oi, sobre a entrega"]
        assert [t.id for t in contact_card.card(s, ADMIN, ids["ana"]).threads] == [
            mine_id, theirs_id]
        assert len(contact_card.history(s, ADMIN, ids["ana"])[0]) == 2


def test_an_import_cannot_change_another_teams_customer(sessions: sessionmaker[Session]) -> None:
    """A manager of atendimento imports a file naming Bruno (trocas') and Eva (no team yet):
    Bruno's row is refused and he is left as he was; Eva's is applied."""
    ids = _world(sessions)
    manager = Principal(level="manager", user_id=None, teams=frozenset({ids["atendimento"]}))
    report = contact_csv.import_csv(sessions, manager, (
        b"nome;telefone;etiquetas\nSobrescrito;5511987650002;golpe\n"
        b"Eva Nunes;5511987650005;nova\n"))
    assert (report.created, report.updated) == (0, 1)
    assert [(r.line, r.column, str(r.why)) for r in report.rejected] == [
        (2, "telefone", "o telefone é de um cliente de outra equipe")]
    with sessions() as s:
        bruno = s.get(Contact, ids["bruno"])
        assert bruno is not None and bruno.name == "Bruno Lima"
        assert contact_data.tags_of(s, ids["bruno"]) == {"vip"}
        assert contact_data.tags_of(s, ids["eva"]) == {"nova"}


def test_pages_of_fifty_walk_every_contact_once(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        s.add_all(Contact(name=f"cliente {i}", phone=f"55119{i:08d}") for i in range(120))
    seen: list[int] = []
    after = None
    with sessions() as s:
        while True:
            page = contact_search.search(s, ADMIN, ContactFilter(q="cliente"), after=after)
            assert page.total == 120 and len(page.rows) <= 50
            seen += [r.id for r in page.rows]
            if page.next_after is None:
                break
            after = page.next_after
    assert len(seen) == len(set(seen)) == 120 and seen == sorted(seen, reverse=True)


def test_a_bad_filter_is_refused_by_what_is_wrong(sessions: sessionmaker[Session]) -> None:
    _world(sessions)
    with pytest.raises(Refused) as bad:
        contact_search.from_params({"tag_mode": ["algumas"], "last_from": ["31/02/2024"],
                                    "field": ["renda"], "op": ["maior"], "value": ["1"],
                                    "open": ["talvez"]})
    assert set(bad.value.problems) == {"tag_mode", "last_from", "field.0", "open"}
    with sessions() as s, pytest.raises(Refused) as bad:
        contact_search.search(s, ADMIN, ContactFilter(
            fields=(FieldCondition("renda", "gt", "muito"), FieldCondition("nada", "set"),
                    FieldCondition("plano", "gt", "Ouro")), instance="fantasma"))
    assert set(bad.value.problems) == {"field.0", "field.1", "field.2", "instance"}
    assert "número" in str(bad.value.problems["field.0"])
    parsed = contact_search.from_params({
        "tag": ["vip", "sp", ""], "tag_mode": ["all"], "field": ["plano", ""],
        "op": ["eq", "eq"], "value": ["Ouro", ""], "last_from": ["2024-01-31"], "open": ["1"]})
    assert parsed == ContactFilter(tags=("vip", "sp"), tag_mode="all", open=True,
                                   fields=(FieldCondition("plano", "eq", "Ouro"),),
                                   last_from=date(2024, 1, 31))


def test_the_api_filters_by_query_parameters(sessions: sessionmaker[Session],
                                             api: TestClient) -> None:
    _world(sessions)
    got = api.get("/api/contacts", params=[("tag", "vip"), ("tag", "sp"), ("tag_mode", "all"),
                                           ("field", "plano"), ("op", "eq"), ("value", "ouro")])
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["total"] == 2 and body["next_after"] is None
    assert sorted(c["name"] for c in body["contacts"]) == ["Ana Souza", "Davi Rocha"]
    assert all("vip" in c["tags"] for c in body["contacts"])
    bad = api.get("/api/contacts", params={"field": "renda", "op": "gt", "value": "x"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "field.0"]


def test_the_api_changes_a_contact_all_or_none(sessions: sessionmaker[Session],
                                               api: TestClient) -> None:
    ids = _world(sessions)
    ana = ids["ana"]
    refused = api.patch(f"/api/contacts/{ana}", json={
        "name": "Ana Maria", "tags": ["vip", "⭐"], "fields": {"renda": "muita", "cor": "azul"}})
    assert refused.status_code == 422
    assert {tuple(p["loc"]) for p in refused.json()["detail"]} == {
        ("body", "tags"), ("body", "fields.renda"), ("body", "fields.cor")}
    card = api.get(f"/api/contacts/{ana}").json()
    assert card["name"] == "Ana Souza" and card["tags"] == ["sp", "vip"]  # nothing changed
    changed = api.patch(f"/api/contacts/{ana}", json={
        "name": "Ana Maria", "tags": ["VIP", "novo"],
        "fields": {"renda": "6.500,5", "plano": None}})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["name"] == "Ana Maria" and body["tags"] == ["novo", "vip"]
    assert body["fields"] == {"renda": "6500.5", "nascimento": "10/05/1990"}
    assert [c["instance"] for c in body["conversations"]] == ["loja"]
    assert api.get("/api/contacts/999999").status_code == 404


def test_a_name_is_found_without_its_accents_or_case(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        s.add_all([Contact(name="João Araújo"), Contact(name="JOSÉ D'ÁVILA"),
                   Contact(name="Conceição"), Contact(name=None, phone="5511900000000")])
    with sessions.begin() as s:  # a name changed later is found by its new spelling
        s.scalars(select(Contact).where(Contact.name == "Conceição")).one().name = (
            "Maria da Conceição")
        s.execute(insert(Contact), [{"name": "Natália Ribeiro"}, {"name": None}])  # in bulk
    cases = [("natalia", ["natália"]), ("joao", ["joão"]), ("ARAUJO", ["joão"]),
             ("araújo", ["joão"]), ("jose", ["josé"]), ("josé d'ávila", ["josé"]),
             ("Conceicao", ["maria"]), ("MARIA DA CONCEIÇÃO", ["maria"]), ("ção", ["maria"]),
             ("%", []), ("ana", [])]
    for q, expected in cases:
        assert _names(sessions, ContactFilter(q=q)) == expected, q


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_migration_gives_names_already_stored_their_key(kind: str, tmp_path: Path) -> None:
    with fresh_database(kind, tmp_path) as url:
        cfg = migrated_over(url, "0013", "INSERT INTO contacts (name, created_at) VALUES "
                            "('Zé Ícaro', CURRENT_TIMESTAMP), (NULL, CURRENT_TIMESTAMP)")
        assert _names(sessions_for(url), ContactFilter(q="ze icaro")) == ["zé"]
        command.downgrade(cfg, "0013")
        assert raw_sql(url, "SELECT name FROM contacts ORDER BY id") == [("Zé Ícaro",), (None,)]
