"""CSV import and export of contacts, on each database: a refused row is reported with its line
and why and leaves nothing behind; accepted rows are stored once, and importing again changes
nothing; a phone without the ninth digit finds the customer who wrote on WhatsApp; an export
of the filtered list imports back as it was."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server.schema import Contact, ContactIdentity, ContactTag
from server.services import contact_csv, contact_data, contacts
from server.services.access import Principal
from server.services.contact_checks import Refused
from server.services.contact_search import ContactFilter
from tests.test_contact_search import api  # noqa: F401,F811  (the API fixture)

ADMIN = Principal(level="admin")
GOOD = """nome;telefone;etiquetas;plano;renda
Ana Souza;(11) 98765-0001;vip, sp;ouro;5.000
Bruno Lima;+55 21 98765-0002;vip;;1.200,50
"""


def _fields(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        contact_data.create_field(s, "plano", "Plano", "choice", ["Básico", "Ouro"])
        contact_data.create_field(s, "renda", "Renda", "number")


def _count(sessions: sessionmaker[Session], table: type) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(table)) or 0


def _by_phone(sessions: sessionmaker[Session], phone: str) -> tuple[str | None, set[str],
                                                                    dict[str, str]]:
    with sessions() as s:
        owner = s.scalar(select(ContactIdentity.contact_id).where(ContactIdentity.value == phone))
        assert owner is not None, phone
        contact = s.get(Contact, owner)
        assert contact is not None
        return contact.name, contact_data.tags_of(s, owner), contact_data.fields_of(s, owner)


def test_bad_rows_are_reported_and_good_ones_stored_once(
        sessions: sessionmaker[Session]) -> None:
    _fields(sessions)
    data = (GOOD + "Caio;11 1234;vip;;\n"  # line 4: not a phone
            "Dora;(11) 98765-0004;troca;Platina;\n"  # 5: not a choice
            "Edu;(11) 98765-0005;;;muito\n"  # 6: not a number
            "Ana de novo;11987650001;;;\n"  # 7: the phone of line 2
            "Fabi;(11) 98765-0006\n"  # 8: too few cells
            ";;\n"  # blank: skipped
            "Gil;(11) 98765-0007;⭐;;\n")  # 10: not a tag name
    report = contact_csv.import_csv(sessions, ADMIN, data.encode())
    assert (report.created, report.updated) == (2, 0)
    assert [(r.line, r.column) for r in report.rejected] == [
        (4, "telefone"), (5, "plano"), (6, "renda"), (7, "telefone"), (8, ""), (10, "etiquetas")]
    reasons = [str(r.why) for r in report.rejected]
    assert "não é um telefone válido" in reasons[0] and "Básico, Ouro" in reasons[1]
    assert "número" in reasons[2] and "linha 2" in reasons[3] and "colunas" in reasons[4]
    # Nothing of a refused row is stored: no contact, and not its good tag either.
    assert _count(sessions, Contact) == 2
    with sessions() as s:
        assert {t.name for t, _ in contact_data.list_tags(s)} == {"vip", "sp"}
    assert _by_phone(sessions, "5511987650001") == ("Ana Souza", {"vip", "sp"},
                                                    {"plano": "Ouro", "renda": "5000"})
    assert _by_phone(sessions, "5521987650002") == ("Bruno Lima", {"vip"}, {"renda": "1200.5"})


def test_importing_again_changes_nothing(sessions: sessionmaker[Session]) -> None:
    _fields(sessions)
    contact_csv.import_csv(sessions, ADMIN, GOOD.encode())
    before = (_count(sessions, Contact), _count(sessions, ContactIdentity),
              _count(sessions, ContactTag))
    again = contact_csv.import_csv(sessions, ADMIN, GOOD.encode("cp1252"))  # as Excel saves it
    assert (again.created, again.updated, again.rejected) == (0, 2, [])
    assert (_count(sessions, Contact), _count(sessions, ContactIdentity),
            _count(sessions, ContactTag)) == before
    # An empty cell leaves a value be; a new tag is added, none taken away.
    contact_csv.import_csv(sessions, ADMIN, b"telefone,etiquetas,plano\n11987650001,nova,\n")
    assert _by_phone(sessions, "5511987650001") == ("Ana Souza", {"vip", "sp", "nova"},
                                                    {"plano": "Ouro", "renda": "5000"})


def test_a_phone_without_the_ninth_digit_finds_the_whatsapp_customer(
        sessions: sessionmaker[Session]) -> None:
    _fields(sessions)
    # The customer wrote on WhatsApp, which reported the old 8-digit form of the mobile.
    customer = contacts.resolve(sessions, phone="551187650001", lid=None, name="Ana")
    report = contact_csv.import_csv(
        sessions, ADMIN, b"nome;telefone;etiquetas\nAna Souza;(11) 8765-0001;vip\n")
    assert (report.created, report.updated) == (0, 1)
    assert _count(sessions, Contact) == 1
    with sessions() as s:
        assert contact_data.tags_of(s, customer) == {"vip"}
        assert s.get(Contact, customer).name == "Ana Souza"  # type: ignore[union-attr]


@pytest.mark.parametrize("data, why", [
    (b"", "vazio"),
    (b"nome;email\nAna;a@b.com\n", "coluna desconhecida: email"),
    (b"nome;etiquetas\nAna;vip\n", "falta a coluna telefone"),
    (b"telefone;telefone\n1;2\n", "duas vezes"),
])
def test_a_file_that_cannot_be_read_is_refused_whole(
        sessions: sessionmaker[Session], data: bytes, why: str) -> None:
    with pytest.raises(Refused) as refused:
        contact_csv.import_csv(sessions, ADMIN, data)
    assert why in str(refused.value.problems["file"])
    assert _count(sessions, Contact) == 0


def test_a_file_over_the_limits_is_refused(sessions: sessionmaker[Session],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contact_csv, "MAX_ROWS", 3)
    rows = "".join(f"11 98765-{i:04d}\n" for i in range(4))
    with pytest.raises(Refused, match="linhas"):
        contact_csv.import_csv(sessions, ADMIN, ("telefone\n" + rows).encode())
    with pytest.raises(Refused, match="MB"):
        contact_csv.import_csv(sessions, ADMIN, b"telefone\n" + b"1" * contact_csv.MAX_BYTES)
    assert _count(sessions, Contact) == 0


def test_the_export_is_the_filtered_list_and_imports_back(
        sessions: sessionmaker[Session]) -> None:
    _fields(sessions)
    contact_csv.import_csv(sessions, ADMIN, (GOOD + "=HYPERLINK(1);11 98765-0003;;;-5\n").encode())
    text = "".join(contact_csv.export_csv(sessions, ADMIN, ContactFilter(tags=("vip",))))
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    assert [(r["nome"], r["telefone"], r["etiquetas"], r["plano"], r["renda"]) for r in rows] == [
        ("Bruno Lima", "5521987650002", "vip", "", "1200.5"),
        ("Ana Souza", "5511987650001", "sp, vip", "Ouro", "5000")]
    everyone = "".join(contact_csv.export_csv(sessions, ADMIN, ContactFilter()))
    assert "'=HYPERLINK(1)" in everyone and ";-5;" in everyone  # no formula; a number stays
    again = contact_csv.import_csv(sessions, ADMIN, everyone.encode())
    assert (again.created, again.updated, again.rejected) == (0, 3, [])


def test_the_api_imports_a_file_and_exports_the_filter(sessions: sessionmaker[Session],
                                                       api: TestClient) -> None:  # noqa: F811
    _fields(sessions)
    got = api.post("/api/contacts/import", files={"file": ("c.csv", GOOD + "X;123;;;\n")})
    assert got.status_code == 200, got.text
    assert got.json()["created"] == 2 and got.json()["rejected"][0]["line"] == 4
    refused = api.post("/api/contacts/import", files={"file": ("c.csv", b"nome;cpf\n")})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "file"]
    out = api.get("/api/contacts/export", params={"field": "plano", "op": "eq", "value": "ouro"})
    assert out.status_code == 200 and out.headers["content-type"].startswith("text/csv")
    assert "Ana Souza" in out.text and "Bruno" not in out.text
    assert api.get("/api/contacts/export", params={"open": "x"}).status_code == 422
