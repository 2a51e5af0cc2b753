"""What every page shares: the language switch, errors drawn as pages for people and JSON for
programs, the front-end files served, and a pairing code drawn as a picture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from server.app import create_app
from server.db import sessions_for
from server.services import auth
from server.settings import Settings, get_settings, use_settings
from server.web import qr

PNG = "data:image/png;base64,iVBORw0KGgo="
HTML = {"accept": "text/html,application/xhtml+xml"}


sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def client(db_url: str, sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[TestClient]:
    saved = get_settings()
    settings = use_settings(Settings(data_dir=tmp_path, database_url=db_url,
                                     simulator_enabled=False))
    yield TestClient(create_app(settings))
    use_settings(saved)


def _agent(client: TestClient) -> None:
    settings = get_settings()
    sessions = sessions_for(settings.sqlalchemy_url)
    user = auth.create_user(sessions, "Ana", "ana@loja.com", "agent", "uma-senha-longa-1")
    client.cookies.set(auth.COOKIE, auth.start_session(sessions, settings, user.id).token)


@sqlite_only
def test_a_person_is_sent_to_login_and_back(client: TestClient) -> None:
    answer = client.get("/inbox?status=closed", headers=HTML, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Finbox%3Fstatus%3Dclosed"


@sqlite_only
def test_a_refusal_is_a_page_for_a_browser_and_json_for_a_program(client: TestClient) -> None:
    _agent(client)
    page = client.get("/admin/users", headers=HTML)
    assert page.status_code == 403 and "text/html" in page.headers["content-type"]
    assert "Sem acesso" in page.text and "Voltar ao início" in page.text
    api = client.get("/api/users")
    assert api.status_code == 403 and api.json()["detail"]
    missing = client.get("/inbox/999999", headers=HTML)
    assert missing.status_code == 404 and "Não encontrado" in missing.text


@sqlite_only
def test_the_language_switch_is_remembered_and_goes_back(client: TestClient) -> None:
    _agent(client)
    assert "Conversas" in client.get("/inbox", headers=HTML).text
    switched = client.get("/lang/en?next=/inbox", follow_redirects=False)
    assert switched.headers["location"] == "/inbox"
    client.cookies.set("lang", switched.cookies["lang"])
    english = client.get("/inbox", headers=HTML).text
    assert "Conversations" in english and 'lang="en"' in english
    away = client.get("/lang/en?next=//evil.example", follow_redirects=False)
    assert away.headers["location"] == "/"  # never to another site


@sqlite_only
def test_the_pinned_front_end_files_are_served(client: TestClient) -> None:
    for name in ("vendor/htmx.min.js", "vendor/sse.min.js", "app.css"):
        answer = client.get(f"/static/{name}")
        assert answer.status_code == 200 and len(answer.content) > 1000, name


def test_a_pairing_code_given_as_text_is_drawn_as_an_image_to_scan() -> None:
    """WAHA gives the QR code's text; a phone scans only a picture."""
    drawn = qr.as_image("2@abc,def,ghi==")
    assert drawn.startswith("data:image/svg+xml")
    assert drawn != qr.as_image("2@abc,def,ghj==")  # the picture carries the code
    assert qr.as_image(PNG) == PNG  # the gateway's own image is shown as it came


@sqlite_only
def test_what_customers_write_is_shown_as_text_never_run(client: TestClient,
                                                          sessions: sessionmaker[Session]) -> None:
    """A customer names themselves with markup (WhatsApp lets them): pages escape it."""
    from server.schema import Contact

    hostile = '<img src=x onerror="alert(1)">Ana'
    with sessions.begin() as s:
        s.add(Contact(name=hostile, phone="5511987650001"))
    settings = get_settings()
    admin = auth.create_user(sessions, "Root", "root@loja.com", "admin", "uma-senha-longa-1")
    client.cookies.set(auth.COOKIE, auth.start_session(sessions, settings, admin.id).token)
    page = client.get("/contacts", headers=HTML)
    assert page.status_code == 200
    assert hostile not in page.text and "&lt;img src=x onerror=" in page.text
