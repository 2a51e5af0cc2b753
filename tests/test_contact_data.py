"""Tags and custom fields on contacts, on each database: as flows set them (the service) and as
an admin does (the API). Concurrent flows tagging at once make one tag; a value a field's type
refuses is never stored, and a request with one refused value stores none."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server.schema import Contact, ContactTag, Tag
from server.services import contact_data
from server.services.contact_data import FieldError
from tests.test_people_api import ADMIN, api  # noqa: F401  (the API fixture)


def _contacts(sessions: sessionmaker[Session], n: int) -> list[int]:
    with sessions.begin() as s:
        made = [Contact(name=f"cliente {i}", phone=f"5511990000{i:03d}") for i in range(n)]
        s.add_all(made)
        s.flush()
        return [c.id for c in made]


def _fields(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        contact_data.create_field(s, "renda", "Renda mensal", "number")
        contact_data.create_field(s, "nascimento", "Data de nascimento", "date")
        contact_data.create_field(s, "plano", "Plano", "choice", ["Básico", "Ouro"])
        contact_data.create_field(s, "obs", "Observações", "text")


def test_a_tag_set_twice_is_one_tag_whatever_its_case(sessions: sessionmaker[Session]) -> None:
    (ana,) = _contacts(sessions, 1)
    with sessions.begin() as s:
        assert contact_data.set_tag(s, ana, "vip")
        assert not contact_data.set_tag(s, ana, "vip")
        assert not contact_data.set_tag(s, ana, " VIP ")  # as conditions compare it
        assert contact_data.set_tag(s, ana, "troca-pendente")
    with sessions() as s:
        assert contact_data.tags_of(s, ana) == {"vip", "troca-pendente"}
        assert s.scalar(select(func.count()).select_from(ContactTag)) == 2
        assert s.scalar(select(func.count()).select_from(Tag)) == 2
    with sessions.begin() as s:
        assert contact_data.remove_tag(s, ana, "Troca Pendente")
        assert not contact_data.remove_tag(s, ana, "troca-pendente")
        assert not contact_data.remove_tag(s, ana, "nunca-existiu")
        with pytest.raises(ValueError, match="letter or a digit"):
            contact_data.set_tag(s, ana, "⭐")
        with pytest.raises(LookupError):
            contact_data.set_tag(s, 999_999, "vip")
    with sessions() as s:
        assert contact_data.tags_of(s, ana) == {"vip"}


def test_two_transactions_making_one_new_tag_make_it_once(
        sessions: sessionmaker[Session]) -> None:
    """The first holds its new tag uncommitted while the second sets it: the second waits (on
    PostgreSQL, for the unique key; on SQLite, for the write lock) and finds it, no error, its
    own transaction unharmed. Then eight flows race on another new name."""
    first, second, *racers = _contacts(sessions, 10)
    made, results, errors = threading.Event(), {}, []

    def hold() -> None:
        with sessions.begin() as s:
            results["first"] = contact_data.set_tag(s, first, "black-friday")
            made.set()
            time.sleep(0.5)  # the second is waiting on this transaction now

    def follow() -> None:
        made.wait(10)
        with sessions.begin() as s:
            results["second"] = contact_data.set_tag(s, second, "black-friday")
            contact_data.set_tag(s, second, "depois")  # the transaction goes on

    def race(contact_id: int, start: threading.Barrier) -> None:
        try:
            start.wait(10)
            with sessions.begin() as s:
                contact_data.set_tag(s, contact_id, "corrida")
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=hold), threading.Thread(target=follow)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    start = threading.Barrier(len(racers))
    threads = [threading.Thread(target=race, args=(c, start)) for c in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {"first": True, "second": True} and errors == []
    with sessions() as s:
        names = list(s.scalars(select(Tag.name).order_by(Tag.name)))
        assert names == ["black-friday", "corrida", "depois"]
        assert contact_data.tags_of(s, second) == {"black-friday", "depois"}
        assert all(contact_data.tags_of(s, c) == {"corrida"} for c in racers)


def test_field_values_are_checked_and_kept_normalized(sessions: sessionmaker[Session]) -> None:
    (ana,) = _contacts(sessions, 1)
    _fields(sessions)
    with sessions.begin() as s:
        assert contact_data.field_keys(s) == {"renda", "nascimento", "plano", "obs"}
        for value, kept in [("1.234,56", "1234.56"), ("12.5", "12.5"), ("12,5", "12.5"),
                            ("12.500", "12500"), ("-3", "-3")]:
            assert contact_data.set_field(s, ana, "renda", value) == kept
        assert contact_data.set_field(s, ana, "nascimento", "1/2/1990") == "01/02/1990"
        assert contact_data.set_field(s, ana, "plano", "BASICO") == "Básico"
        assert contact_data.set_field(s, ana, "plano", " ouro ") == "Ouro"
        assert contact_data.set_field(s, ana, "obs", "  prefere WhatsApp  ") == "prefere WhatsApp"
        for key, value, why in [("nascimento", "31/02/2024", "not a date"),
                                ("nascimento", "2024-02-01", "dd/mm/aaaa"),
                                ("renda", "mil reais", "not a number"),
                                ("plano", "Prata", "Básico, Ouro"),
                                ("obs", "x" * 1001, "1000"),
                                ("cpf", "123", "no custom field 'cpf'")]:
            with pytest.raises(FieldError, match=why) as refused:
                contact_data.set_field(s, ana, key, value)
            assert set(refused.value.problems) == {key}
        assert contact_data.fields_of(s, ana) == {"renda": "-3", "nascimento": "01/02/1990",
                                                  "plano": "Ouro", "obs": "prefere WhatsApp"}
        assert contact_data.set_field(s, ana, "obs", "") == ""  # empty clears
        assert "obs" not in contact_data.fields_of(s, ana)


def test_a_fields_type_stays_while_contacts_hold_values(sessions: sessionmaker[Session]) -> None:
    (ana,) = _contacts(sessions, 1)
    _fields(sessions)
    with sessions.begin() as s:
        contact_data.set_field(s, ana, "plano", "ouro")
        contact_data.update_field(s, "obs", {"type": "number"})  # no values: may change
        with pytest.raises(ValueError, match="needs its choices"):
            contact_data.update_field(s, "renda", {"type": "choice"})
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"type": "text"}, "type stays choice"),
        ({"choices": ["Básico", "Prata"]}, "'Ouro', which the new choices lack")]
    for changes, why in refusals:
        with sessions.begin() as s, pytest.raises(contact_data.Conflict, match=why):
            contact_data.update_field(s, "plano", changes)
    with sessions.begin() as s:  # respelled: the values follow
        contact_data.update_field(s, "plano", {"choices": ["básico", "OURO", "Prata"]})
    with sessions() as s:
        assert contact_data.fields_of(s, ana) == {"plano": "OURO"}


def test_a_type_change_waits_for_values_being_stored(db_url: str,
                                                    sessions: sessionmaker[Session]) -> None:
    """PostgreSQL: a value checked against the old type, not yet committed, is seen by a type
    change, which then stays refused (SQLite locks no rows; its writers take turns)."""
    if db_url.startswith("sqlite"):
        pytest.skip("row locks are PostgreSQL's")
    (ana,) = _contacts(sessions, 1)
    _fields(sessions)
    stored, outcome = threading.Event(), []

    def store() -> None:
        with sessions.begin() as s:
            contact_data.set_field(s, ana, "renda", "1.500")
            stored.set()
            time.sleep(0.5)

    writer = threading.Thread(target=store)
    writer.start()
    stored.wait(10)
    try:
        with sessions.begin() as s:
            contact_data.update_field(s, "renda", {"type": "date"})
    except contact_data.Conflict as exc:
        outcome.append(str(exc))
    writer.join(10)
    assert outcome and "type stays number" in outcome[0]
    with sessions() as s:
        assert contact_data.fields_of(s, ana) == {"renda": "1500"}


def test_contact_fields_over_the_api_are_all_or_nothing(
        api: TestClient, sessions: sessionmaker[Session]) -> None:  # noqa: F811
    (ana,) = _contacts(sessions, 1)
    made = api.post("/api/fields", headers=ADMIN, json={
        "key": "plano", "label": "Plano", "type": "choice", "choices": ["Básico", "Ouro"]})
    assert made.status_code == 201, made.text
    assert api.post("/api/fields", headers=ADMIN, json={
        "key": "plano", "label": "Outro", "type": "text"}).status_code == 409
    assert api.post("/api/fields", headers=ADMIN, json={
        "key": "x", "label": "X", "type": "choice"}).status_code == 422
    api.post("/api/fields", headers=ADMIN, json={"key": "nascimento", "label": "Nascimento",
                                                 "type": "date"})
    url = f"/api/contacts/{ana}/fields"
    refused = api.patch(url, headers=ADMIN, json={"plano": "ouro", "nascimento": "31/02/2024",
                                                  "cidade": "Recife"})
    assert refused.status_code == 422
    assert {e["loc"][-1] for e in refused.json()["detail"]} == {"nascimento", "cidade"}
    assert api.get(url, headers=ADMIN).json() == {}  # "plano" was fine, and not stored either
    stored = api.patch(url, headers=ADMIN, json={"plano": "ouro", "nascimento": "29/02/2024"})
    assert stored.status_code == 200
    assert stored.json() == {"plano": "Ouro", "nascimento": "29/02/2024"}
    assert api.patch(url, headers=ADMIN, json={"plano": None}).json() == {
        "nascimento": "29/02/2024"}
    changed = api.patch("/api/fields/nascimento", headers=ADMIN, json={"type": "text"})
    assert changed.status_code == 409 and "type stays date" in changed.json()["detail"]
    assert api.patch("/api/contacts/999999/fields", headers=ADMIN,
                     json={"plano": "ouro"}).status_code == 404
    assert api.delete("/api/fields/nascimento", headers=ADMIN).status_code == 204
    assert api.get(url, headers=ADMIN).json() == {}


def test_tags_over_the_api_and_deleting_one_keeps_its_contacts(
        api: TestClient, sessions: sessionmaker[Session]) -> None:  # noqa: F811
    (ana,) = _contacts(sessions, 1)
    vip = api.post("/api/tags", headers=ADMIN, json={"name": "vip", "color": "#ffcc00"})
    assert vip.status_code == 201, vip.text
    dup = api.post("/api/tags", headers=ADMIN, json={"name": "VIP"})
    assert dup.status_code == 409 and "'vip' exists" in dup.json()["detail"]
    assert api.post("/api/tags", headers=ADMIN, json={"name": "x", "color": "amarelo"}
                    ).status_code == 422
    url = f"/api/contacts/{ana}/tags"
    assert api.put(url, headers=ADMIN, json={"name": "Vip"}).json() == ["vip"]
    assert api.put(url, headers=ADMIN, json={"name": "nova"}).json() == ["nova", "vip"]
    assert api.put("/api/contacts/999999/tags", headers=ADMIN,
                   json={"name": "vip"}).status_code == 404
    listed = {t["name"]: t for t in api.get("/api/tags", headers=ADMIN).json()}
    assert listed["vip"]["contacts"] == 1 and listed["vip"]["color"] == "#ffcc00"
    renamed = api.patch(f"/api/tags/{vip.json()['id']}", headers=ADMIN, json={"name": "VIP ouro"})
    assert renamed.status_code == 200 and renamed.json()["contacts"] == 1
    assert api.patch(f"/api/tags/{vip.json()['id']}", headers=ADMIN,
                     json={"name": "Nova"}).status_code == 409
    assert api.delete(f"/api/tags/{vip.json()['id']}", headers=ADMIN).status_code == 204
    assert api.get(url, headers=ADMIN).json() == ["nova"]
    assert api.delete(f"{url}/nova", headers=ADMIN).status_code == 204
    assert api.get(url, headers=ADMIN).json() == []
    with sessions() as s:
        assert s.get(Contact, ana) is not None  # the contact stays
    assert api.delete("/api/tags/999999", headers=ADMIN).status_code == 404
