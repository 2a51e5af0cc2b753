"""The contact pages in a browser, against a real server with the demo company: customers write
on WhatsApp (the simulator); a manager imports a spreadsheet about them (a refused row
reported with its reason), filters the list by a tag and a field in place, and exports what
the filter finds; the contact page shows the history with its authors, and its fields and
tags are edited there, a bad value refused beside its field. Screenshots at desktop and phone
width."""

from __future__ import annotations

import csv
import io
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.app import create_app
from server.db import migrate, sessions_for
from server.schema import Contact, ContactIdentity, Conversation, User
from server.services import auth, contact_data, instances, people
from server.services.demo import SIMULATOR_INSTANCE
from server.settings import Settings, get_settings, use_settings
from tests.web import DESKTOP, PHONE, Web, shot

TAG = "cliente-ouro"


def _customer_writes(web: Web, phone: str, name: str, text: str) -> None:
    answer = httpx.post(f"{web.url}/simulator/api/{SIMULATOR_INSTANCE}/messages",
                        json={"phone": phone, "name": name, "text": text}, timeout=20)
    assert answer.status_code == 200, answer.text


def _answered(web: Web, phone: str, timeout: float = 30) -> None:
    """Wait until the customer's phone (the simulator) got the flow's answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chat = httpx.get(f"{web.url}/simulator/api/{SIMULATOR_INSTANCE}/messages",
                         params={"phone": phone}, timeout=10).json()
        if any(m["direction"] == "out" for m in chat):
            return
        time.sleep(0.3)
    raise AssertionError(f"no answer reached {phone}")


def _phones() -> list[str]:
    """Three new mobiles of São Paulo (9 8xxx-xxxx: the old 8-digit form is 8xxx-xxxx)."""
    base = "".join(secrets.choice("0123456789") for _ in range(5))
    return [f"551198{base}{i:02d}" for i in range(3)]


def test_a_manager_imports_filters_by_tag_and_field_and_exports(
        web: Web, browser: Any, tmp_path: Path) -> None:
    ana, bia, caio = _phones()
    for phone, name in [(ana, "Ana Cliente"), (bia, "Bia Cliente"), (caio, "Caio Cliente")]:
        _customer_writes(web, phone, name, "oi")
    page = web.login(browser, "manager")
    # The spreadsheet: Ana's mobile without its ninth digit still finds her.
    old_form = ana[:4] + ana[5:]
    sheet = tmp_path / "clientes.csv"
    sheet.write_text(f"nome;telefone;etiquetas;pedido\n"
                     f"Ana Souza;{old_form};{TAG}, sp;AU2025-1\n"
                     f"Bia Lima;{bia};{TAG};AU2025-2\n"
                     f"Caio Reis;{caio};{TAG};\n"
                     f"Sem Telefone;123;{TAG};AU2025-9\n", encoding="utf-8")
    page.goto("/contacts/import")
    page.set_input_files("#f-file", str(sheet))
    page.click("form[hx-post='/contacts/import'] button[type=submit]")
    report = page.locator("#report .report")
    report.wait_for()
    assert "Criados: 0" in report.inner_text() and "Atualizados: 3" in report.inner_text()
    assert "Recusados: 1" in report.inner_text()
    row = page.locator("#report table.list tbody tr")
    assert row.count() == 1 and row.first.inner_text().startswith("5")
    assert "não é um telefone válido" in row.first.inner_text()
    shot(page, "contacts-import-desktop")
    # Filter by the tag, then by a field: the list changes in place, no page load.
    page.goto("/contacts")
    shot(page, "contacts-list-desktop")
    page.evaluate("window.__same_page = true")
    page.select_option("select[name=tag_mode]", "all")
    page.check(f"input[name=tag][value='{TAG}']")
    page.locator("#results", has_text="3 contatos").wait_for()
    page.select_option("select[name=field] >> nth=0", "pedido")
    page.select_option("select[name=op] >> nth=0", "contains")
    page.fill("input[name=value] >> nth=0", "au2025")
    page.press("input[name=value] >> nth=0", "Enter")
    page.locator("#results", has_text="2 contatos").wait_for()
    assert page.evaluate("window.__same_page") is True
    names = page.locator("#results table.contacts tbody td:first-child").all_inner_texts()
    assert sorted(names) == ["Ana Souza", "Bia Lima"]
    assert "tag=" in page.url and "pedido" in page.url  # the filter is in the address
    shot(page, "contacts-filtered-desktop")
    page.set_viewport_size(PHONE)
    page.reload()  # the filter is in the address: the same list, folded filters open
    page.locator("#results", has_text="2 contatos").wait_for()
    shot(page, "contacts-filtered-phone")
    page.set_viewport_size(DESKTOP)
    page.reload()
    with page.expect_download() as download:
        page.click("#results a[href^='/api/contacts/export']")
    exported = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(exported), delimiter=";"))
    assert sorted((r["nome"], r["pedido"]) for r in rows) == [("Ana Souza", "AU2025-1"),
                                                              ("Bia Lima", "AU2025-2")]
    assert {r["telefone"] for r in rows} == {ana, bia}
    # A field that is not there is refused next to its row.
    page.fill("input[name=value] >> nth=0", "")
    page.select_option("select[name=op] >> nth=0", "gt")
    page.locator(".flash.error").wait_for()
    page.close()


def test_a_contact_page_shows_the_history_and_edits_tags_and_fields(
        web: Web, browser: Any) -> None:
    phone = _phones()[0]
    _customer_writes(web, phone, "Duda Cliente", "oi")
    _customer_writes(web, phone, "Duda Cliente", "quero falar com um atendente")
    _answered(web, phone)
    _number_field(web)
    page = web.login(browser, "agent")
    page.goto("/contacts?q=" + phone[-8:])
    page.locator("#results a", has_text="Duda Cliente").click()
    page.wait_for_url("**/contacts/*")
    history = page.locator(".history .messages")
    history.locator(".msg.by-customer", has_text="quero falar").wait_for()
    assert history.locator(".msg.in .who").first.inner_text() == "Cliente"
    assert history.locator(".msg.out").count() >= 1  # the flow's menu, marked as its own
    said = history.locator(".msg.by-customer .text").all_inner_texts()
    assert said.index("oi") < said.index("quero falar com um atendente")  # newest last
    ids = [int(i) for i in history.locator(".msg").evaluate_all("ms => ms.map(m => m.dataset.id)")]
    assert ids == sorted(ids)
    # Tags: add one, take it away.
    page.fill("#f-add", "Retorno")
    page.click("#contact-tags .add-tag button")
    page.locator("#contact-tags .chip.tag", has_text="Retorno").wait_for()
    page.click("#contact-tags .chip.tag button.remove")
    page.locator("#contact-tags", has_text="Sem etiquetas").wait_for()
    # Fields, all or none: a bad number is refused beside its field, and nothing is saved.
    page.reload()
    page.fill("#f-pedido", "AU2025-77")
    page.fill("#f-pontos", "muitos")
    page.click("#contact-data button[type=submit]")
    page.locator("#contact-data .field.invalid", has_text="não é um número").wait_for()
    shot(page, "contact-field-error-desktop")
    page.reload()
    assert page.locator("#f-pedido").input_value() == ""
    page.fill("#f-pedido", "AU2025-77")
    page.fill("#f-pontos", "1.250")
    page.fill("#f-name", "Duda Martins")
    page.click("#contact-data button[type=submit]")
    page.locator("#contact-data .flash.ok").wait_for()
    assert page.locator("#f-pontos").input_value() == "1250"
    page.reload()
    assert page.locator("h1").inner_text() == "Duda Martins"
    assert page.locator("#f-pedido").input_value() == "AU2025-77"
    shot(page, "contact-page-desktop")
    page.set_viewport_size(PHONE)
    page.reload()
    shot(page, "contact-page-phone")
    page.goto("/contacts")
    shot(page, "contacts-list-phone")
    page.close()


def test_an_agent_finds_only_their_teams_contacts(web: Web, browser: Any) -> None:
    phone = _phones()[0]
    _customer_writes(web, phone, "Eli Cliente", "oi")
    with sessions_for(web.db_url).begin() as s:  # handed to trocas
        contact = s.scalar(select(ContactIdentity.contact_id).where(
            ContactIdentity.value == phone))
        conv = s.scalars(select(Conversation).where(Conversation.contact_id == contact)).one()
        trocas = people.get_team_by_name(s, "trocas")
        assert trocas is not None
        conv.team_id = trocas.id
    agent = web.login(browser, "agent", viewport=PHONE)  # atendimento only
    agent.goto("/contacts?q=" + phone[-8:])
    agent.locator("#results .empty").wait_for()
    assert agent.goto(f"/contacts/{contact}").status == 404  # type: ignore[union-attr]
    agent.close()
    other = web.login(browser, "other", viewport=PHONE)  # trocas
    other.goto("/contacts?q=" + phone[-8:])
    other.locator("#results a", has_text="Eli Cliente").wait_for()
    assert other.goto(f"/contacts/{contact}").status == 200  # type: ignore[union-attr]
    other.close()


def _number_field(web: Web) -> None:
    """A number field beside the demo's text ones, to see a value refused by its type."""
    with sessions_for(web.db_url).begin() as s:
        if "pontos" not in contact_data.field_keys(s):
            contact_data.create_field(s, "pontos", "Pontos de fidelidade", "number")


@pytest.fixture
def logged_in(tmp_path: Path) -> Iterator[tuple[TestClient, sessionmaker[Session], int]]:
    """The app on a fresh SQLite database, a manager logged in; one contact in the common
    queue. (The pages' HTMX answers, without a browser.)"""
    url = f"sqlite:///{tmp_path / 'pages.db'}"
    migrate(url)
    saved = get_settings()
    settings = use_settings(Settings(data_dir=tmp_path, database_url=url))
    sessions = sessions_for(url)
    inst = instances.ensure_simulator(sessions, "loja", "http://127.0.0.1:9").id
    with sessions.begin() as s:
        user = User(name="Gerente", email="g@loja.com", level="manager", active=True,
                    online=False)
        contact = Contact(name="Duda", phone="5511987654321")
        s.add_all([user, contact])
        s.flush()
        s.add(Conversation(contact_id=contact.id, instance_id=inst, address="x"))
        contact_data.create_field(s, "pontos", "Pontos", "number")
        user_id, contact_id = user.id, contact.id
    client = TestClient(create_app(settings))
    client.cookies.set(auth.COOKIE, auth.start_session(sessions, settings, user_id).token)
    client.get("/contacts")  # the CSRF cookie
    client.headers.update({"X-CSRFToken": client.cookies["csrftoken"], "HX-Request": "true"})
    yield client, sessions, contact_id
    use_settings(saved)


def test_htmx_answers_are_the_block_with_the_refusal_beside_its_field(
        logged_in: tuple[TestClient, sessionmaker[Session], int]) -> None:
    client, sessions, contact = logged_in
    empty = client.get("/contacts", params={"q": "ninguém"})
    assert empty.status_code == 200 and "Nenhum contato com este filtro" in empty.text
    assert "<html" not in empty.text  # the block only
    bad = client.get("/contacts", params={"field": "pontos", "op": "gt", "value": "x"})
    assert "não é um número" in bad.text
    saved = client.post(f"/contacts/{contact}", data={"name": "Duda", "field.pontos": "x"})
    assert saved.status_code == 200 and 'class="field invalid"' in saved.text
    assert "não é um número" in saved.text and "<html" not in saved.text
    with sessions() as s:
        assert contact_data.fields_of(s, contact) == {}
    tagged = client.post(f"/contacts/{contact}/tags", data={"add": "⭐"})
    assert "precisa de uma letra" in tagged.text
    tagged = client.post(f"/contacts/{contact}/tags", data={"add": "Retorno"})
    assert "Retorno" in tagged.text
    report = client.post("/contacts/import", files={"file": ("c.csv", b"telefone;cor\n1;2\n")})
    assert "coluna desconhecida: cor" in report.text
    del client.headers["HX-Request"]  # a plain form post: the whole page, 422
    plain = client.post(f"/contacts/{contact}", data={"name": "Duda", "field.pontos": "x"})
    assert plain.status_code == 422 and "<html" in plain.text
