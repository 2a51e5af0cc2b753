"""The admin pages as an admin, a manager and an agent meet them (through the app, by session
cookie and form posts): a refused form shows why beside the field and stores nothing, each
level opens what it may, and no gateway credential ever reaches a page."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server import runtime
from server.app import create_app
from server.schema import CustomField, Instance, Tag, Team, User
from server.services import auth, contact_data, instances, people
from server.settings import Settings, get_settings, use_settings
from tests.gateways import fake_evolution as fe
from tests.gateways.fakehttp import FakeHTTP

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAA"
       "AgAB4iG8MwAAAABJRU5ErkJggg==")  # one white pixel, as Evolution would give a QR


class Browser:
    """A logged-in user's client: GET pages, POST forms with the CSRF field as the page's."""

    def __init__(self, app: object, sessions: sessionmaker[Session], settings: Settings,
                 level: str) -> None:
        with sessions.begin() as s:
            user = User(name=f"{level} user", email=f"{level}-{secrets.token_hex(3)}@loja.com",
                        level=level, active=True, online=False)
            s.add(user)
            s.flush()
            self.user_id = user.id
        self.client = TestClient(app, headers={"Accept": "text/html"})  # type: ignore[arg-type]
        self.client.cookies.set(auth.COOKIE, auth.start_session(sessions, settings,
                                                                self.user_id).token)
        self.csrf = self.client.get("/login").cookies["csrftoken"]

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path, follow_redirects=False)

    def post(self, path: str, data: dict[str, object]) -> httpx.Response:
        return self.client.post(path, data={**data, "csrftoken": self.csrf},
                                follow_redirects=False)


def error_beside(html: str, field: str) -> str:
    """The error drawn in the field block of ``field`` (its input's id is f-FIELD)."""
    block = re.search(r'<div class="field[^"]*invalid">\s*<label for="f-' + re.escape(field)
                      + r'".*?</div>', html, re.S)
    assert block, f"no error beside {field}"
    found = re.search(r'<span class="error" role="alert">(.*?)</span>', block.group(0), re.S)
    assert found, f"no error beside {field}"
    return found.group(1)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Iterator[Settings]:
    saved = get_settings()
    yield use_settings(Settings(data_dir=tmp_path, database_url=db_url))
    use_settings(saved)


@pytest.fixture
def app(settings: Settings) -> object:
    return create_app(settings)


@pytest.fixture
def admin(app: object, sessions: sessionmaker[Session], settings: Settings) -> Browser:
    return Browser(app, sessions, settings, "admin")


def count(sessions: sessionmaker[Session], table: type) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def test_a_team_refused_for_its_name_or_its_hours_says_why_beside_the_field(
        admin: Browser, sessions: sessionmaker[Session]) -> None:
    week = {"always": "", "timezone": "America/Sao_Paulo", "seg": "08:00-18:00",
            "ter": "8:00-12:00, 13:00-18:00", "sab": "9-13", "closed": "25/12/2026",
            "closed_window_minutes": "720"}
    made = admin.post("/admin/teams", {"name": "Vendas", **week})
    assert made.status_code == 303, made.text
    with sessions() as s:
        team = people.get_team_by_name(s, "Vendas")
        assert team is not None
        # The editor's lines are the hours JSON the engine reads, ranges folded.
        assert team.hours == {"timezone": "America/Sao_Paulo", "closed": ["2026-12-25"],
                              "hours": {"seg": ["08:00-18:00"],
                                        "ter": ["08:00-12:00", "13:00-18:00"],
                                        "sab": ["09:00-13:00"]}}
        people.check_hours(team.hours)
    page = admin.get(made.headers["location"]).text
    assert 'value="08:00-12:00, 13:00-18:00"' in page and 'value="25/12/2026"' in page

    taken = admin.post("/admin/teams", {"name": "Vendas", **week})
    assert taken.status_code == 422
    assert "Já existe uma equipe" in error_beside(taken.text, "name")
    bad = admin.post("/admin/teams", {"name": "Suporte", **week, "qua": "18:00-08:00"})
    assert bad.status_code == 422
    assert "18:00-08:00" in error_beside(bad.text, "qua")
    assert 'value="18:00-08:00"' in bad.text  # what was typed is drawn again, to fix
    zone = admin.post("/admin/teams", {"name": "Suporte", **week, "timezone": "Lua/Base"})
    assert "Fuso" in error_beside(zone.text, "timezone")
    none = admin.post("/admin/teams", {"name": "Suporte", "timezone": "America/Sao_Paulo",
                                       "closed_window_minutes": "720"})
    assert none.status_code == 422 and "Nenhum dia tem horário" in none.text
    assert count(sessions, Team) == 1  # nothing stored on any refusal
    # Always open is null hours; an edit that fails leaves the stored hours as they were.
    team_id = team.id
    assert admin.post(f"/admin/teams/{team_id}", {**week, "name": "Vendas",
                                                   "seg": "oito"}).status_code == 422
    assert admin.post(f"/admin/teams/{team_id}", {"name": "Vendas", "always": "1",
                                                   "closed_window_minutes": "30"}
                      ).status_code == 303
    with sessions() as s:
        team = people.get_team(s, team_id)
        assert team.hours is None and team.closed_window_minutes == 30


def test_members_are_added_and_taken_out_from_the_team_page(
        admin: Browser, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        team = people.create_team(s, "Trocas")
        ana = people.create_user(s, "Ana Lima", "ana@loja.com")
        team_id, ana_id = team.id, ana.id
    assert "Ana Lima" in admin.get(f"/admin/teams/{team_id}").text  # offered to add
    assert admin.post(f"/admin/teams/{team_id}/members", {"user_id": ana_id}).status_code == 303
    with sessions() as s:
        assert [u.id for u in people.members(s, [team_id])[team_id]] == [ana_id]
    assert admin.post(f"/admin/teams/{team_id}/members/{ana_id}/remove", {}).status_code == 303
    with sessions() as s:
        assert people.members(s, [team_id])[team_id] == []


def test_a_new_user_gets_a_password_shown_once_that_logs_in(
        admin: Browser, sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions.begin() as s:
        team_id = people.create_team(s, "Atendimento").id
    made = admin.post("/admin/users", {"name": "Bia Reis", "email": "Bia@Loja.com",
                                       "level": "agent", "teams": team_id})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    password = re.search(r'id="once-password"[^>]*value="([^"]+)"', made.text)
    assert password, made.text
    login = auth.login(sessions, settings, "bia@loja.com", password.group(1), "10.0.0.1")
    assert login.who.level == "agent" and login.who.teams == {team_id}
    with sessions() as s:
        bia = s.scalars(select(User).where(User.email == "bia@loja.com")).one()
    assert password.group(1) not in admin.get(f"/admin/users/{bia.id}").text
    assert password.group(1) not in admin.get("/admin/users").text

    users = count(sessions, User)
    taken = admin.post("/admin/users", {"name": "Outra Bia", "email": "BIA@loja.com",
                                        "level": "agent"})
    assert taken.status_code == 422
    assert "Já existe um usuário" in error_beside(taken.text, "email")
    bad = admin.post("/admin/users", {"name": "Caio", "email": "caio@@loja", "level": "agent"})
    assert "caio@@loja" in error_beside(bad.text, "email")
    assert count(sessions, User) == users

    # A new password ends the sessions of the old one.
    fresh = admin.post(f"/admin/users/{bia.id}/password", {})
    assert fresh.headers["cache-control"] == "no-store"
    with sessions() as s:
        assert auth.session_user(s, login.token) is None
    # Deactivated from the page: kept, and out.
    assert admin.post(f"/admin/users/{bia.id}", {"name": "Bia Reis", "email": "bia@loja.com",
                                                 "level": "agent"}).status_code == 303
    with sessions() as s:
        assert s.get(User, bia.id).active is False  # type: ignore[union-attr]
        assert people.teams_of(s, bia.id) == set()


def test_tags_and_fields_refusals_are_shown_beside_their_field(
        admin: Browser, sessions: sessionmaker[Session]) -> None:
    assert admin.post("/admin/tags", {"name": "VIP", "color": "#ff0000"}).status_code == 303
    again = admin.post("/admin/tags", {"name": "vip", "color": "#00ff00"})
    assert "Já existe uma etiqueta" in error_beside(again.text, "name")
    color = admin.post("/admin/tags", {"name": "Novo", "color": "vermelho"})
    assert "#0f766e" in error_beside(color.text, "color")
    assert count(sessions, Tag) == 1
    choice = admin.post("/admin/fields", {"key": "plano", "label": "Plano", "type": "choice",
                                          "choices": ""})
    assert "opções" in error_beside(choice.text, "choices")
    key = admin.post("/admin/fields", {"key": "meu campo", "label": "X", "type": "text"})
    assert "sem espaços" in error_beside(key.text, "key")
    assert count(sessions, CustomField) == 0
    assert admin.post("/admin/fields", {"key": "plano", "label": "Plano", "type": "choice",
                                        "choices": "Ouro\nPrata"}).status_code == 303
    with sessions.begin() as s:  # a contact holds a value: the type stays
        from server.schema import Contact

        contact = Contact(name="Maria", phone="5511999990000")
        s.add(contact)
        s.flush()
        contact_data.set_field(s, contact.id, "plano", "ouro")
    changed = admin.post("/admin/fields/plano", {"label": "Plano", "type": "text"})
    assert "o tipo não muda" in error_beside(changed.text, "type")
    with sessions() as s:
        assert contact_data.get_field(s, "plano").type == "choice"


def test_a_manager_reads_tags_and_fields_and_an_agent_gets_no_access(
        app: object, admin: Browser, sessions: sessionmaker[Session],
        settings: Settings) -> None:
    admin.post("/admin/tags", {"name": "VIP", "color": "#ff0000"})
    manager = Browser(app, sessions, settings, "manager")
    tags = manager.get("/admin/tags")
    assert tags.status_code == 200 and "VIP" in tags.text
    assert 'action="/admin/tags"' not in tags.text and "só administradores" in tags.text
    assert manager.get("/admin/fields").status_code == 200
    assert manager.post("/admin/tags", {"name": "Outra"}).status_code == 403
    assert manager.post("/admin/tags/1/delete", {}).status_code == 403
    assert count(sessions, Tag) == 1
    for path in ("/admin/teams", "/admin/users", "/admin/instances", "/admin/fields/plano"):
        assert manager.get(path).status_code == 403, path
    agent = Browser(app, sessions, settings, "agent")
    for path in ("/admin/tags", "/admin/fields", "/admin/teams", "/admin/users",
                 "/admin/instances", "/admin/instances/new"):
        refused = agent.get(path)
        assert refused.status_code == 403 and "Sem acesso" in refused.text, path
    assert 'href="/admin/' not in agent.get("/admin/tags").text  # the menu offers none


def test_an_invalid_gateway_url_is_refused_beside_it_and_nothing_stored(
        admin: Browser, sessions: sessionmaker[Session]) -> None:
    for url in ("evo.loja.com", "ftp://evo.loja.com", "https://", "http://evo loja.com"):
        bad = admin.post("/admin/instances", {"name": "vendas-01", "provider": "evolution",
                                              "api_url": url, "api_key": "k"})
        assert bad.status_code == 422, url
        assert "http://" in error_beside(bad.text, "api_url")
    name = admin.post("/admin/instances", {"name": "vendas 01", "provider": "waha",
                                           "api_url": "https://waha.loja.com", "api_key": "k"})
    assert "vendas-01" in error_beside(name.text, "name")
    cloud = admin.post("/admin/instances", {"name": "oficial", "provider": "cloud",
                                            "api_key": "t", "webhook_secret": "app-secret-1",
                                            "verify_token": "v"})
    assert "phone_number_id" in error_beside(cloud.text, "options.phone_number_id")
    assert count(sessions, Instance) == 0


SECRETS = {"evolution": ("EVO-KEY-0001-secret", None, None),
           "waha": ("WAHA-KEY-0002-secret", "WAHA-HMAC-0003-secret", None),
           "cloud": ("CLOUD-TOKEN-0004-secret", "CLOUD-APPSECRET-0005", "CLOUD-VERIFY-0006")}


def test_no_page_ever_shows_a_gateway_credential(
        admin: Browser, sessions: sessionmaker[Session]) -> None:
    for provider, (key, secret, verify) in SECRETS.items():
        options = {"evolution": {"instance": "v1"}, "waha": {"session": "default"},
                   "cloud": {"phone_number_id": "1065"}}[provider]
        instances.create(sessions, {"name": f"n-{provider}", "provider": provider,
                                    "api_url": None if provider == "cloud" else
                                    f"https://{provider}.loja.com", "api_key": key,
                                    "webhook_secret": secret, "verify_token": verify,
                                    "options": options})
    with sessions() as s:  # the webhook secrets Evolution's was given
        known = [str(i.webhook_secret) for i in s.scalars(select(Instance))]
    known += [v for trio in SECRETS.values() for v in trio if v]
    pages = ["/admin/instances", "/admin/instances/new", "/admin/tags", "/admin/fields",
             "/admin/teams", "/admin/users"]
    pages += [f"/admin/instances/n-{p}" for p in SECRETS]
    seen = {path: admin.get(path) for path in pages}
    # Refused and accepted edits draw the page again or move on: never with a secret in it.
    seen["refused edit"] = admin.post("/admin/instances/n-waha", {
        "api_url": "not a url", "api_key": "WAHA-NEW-KEY-0007"})
    seen["kept edit"] = admin.post("/admin/instances/n-cloud", {
        "options.phone_number_id": "2077", "api_key": "", "verify_token": ""})
    seen["after edit"] = admin.get("/admin/instances/n-cloud")
    for what, answer in seen.items():
        assert answer.status_code in (200, 303, 422), what
        for secret in [*known, "WAHA-NEW-KEY-0007"]:
            assert secret not in answer.text, (what, secret)
    assert "Definido: deixe em branco para manter." in seen["/admin/instances/n-cloud"].text
    with sessions() as s:  # blank kept the stored credentials; the refused edit stored nothing
        cloud, waha = instances.get(s, "n-cloud"), instances.get(s, "n-waha")
        assert (cloud.api_key, cloud.verify_token) == ("CLOUD-TOKEN-0004-secret",
                                                       "CLOUD-VERIFY-0006")
        assert cloud.options == {"phone_number_id": "2077"}
        assert waha.api_key == "WAHA-KEY-0002-secret"


def test_a_made_webhook_secret_is_shown_once_with_the_url_to_paste(
        admin: Browser, sessions: sessionmaker[Session]) -> None:
    made = admin.post("/admin/instances", {"name": "vendas-01", "provider": "evolution",
                                           "api_url": "https://evo.loja.com",
                                           "api_key": "EVO-KEY", "options.instance": "v1"})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    with sessions() as s:
        secret = instances.get(s, "vendas-01").webhook_secret
    assert f"/webhooks/evolution/vendas-01?token={secret}" in made.text
    detail = admin.get("/admin/instances/vendas-01").text
    assert secret not in detail and "/webhooks/evolution/vendas-01?token=" in detail
    rotated = admin.post("/admin/instances/vendas-01/secret", {})
    with sessions() as s:
        fresh = instances.get(s, "vendas-01").webhook_secret
    assert fresh != secret and fresh in rotated.text


@pytest.fixture
def evolution() -> Iterator[fe.FakeEvolution]:
    with FakeHTTP() as http:
        yield fe.FakeEvolution(http)


def test_the_qr_code_is_shown_while_pairing_and_polling_stops_once_linked(
        admin: Browser, sessions: sessionmaker[Session], evolution: fe.FakeEvolution,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_current", SimpleNamespace(http=httpx.Client(timeout=5)))
    instances.create(sessions, {"name": "vendas-01", "provider": "evolution",
                                "api_url": evolution.url, "api_key": fe.API_KEY,
                                "options": {"instance": fe.INSTANCE}})
    evolution.state, evolution.qr_base64 = "close", PNG
    assert admin.post("/admin/instances/vendas-01/check", {}).status_code == 303
    listing = admin.get("/admin/instances").text
    assert "Desconectado" in listing and "Desconectado do WhatsApp" in listing  # the alert
    qr = admin.get("/admin/instances/vendas-01/qr")
    assert qr.status_code == 200 and f'src="{PNG}"' in qr.text
    admin.post("/admin/instances/vendas-01/check", {})  # asking for the QR started pairing
    assert "Pareando" in admin.get("/admin/instances/vendas-01").text
    evolution.state = "open"
    admin.post("/admin/instances/vendas-01/check", {})
    linked = admin.get("/admin/instances/vendas-01/qr")
    assert linked.status_code == 286 and "<img" not in linked.text  # htmx stops polling
    assert "Conectado" in admin.get("/admin/instances").text



def test_an_admin_cannot_demote_themselves_when_no_other_admin_remains(
        admin: Browser, sessions: sessionmaker[Session]) -> None:
    form = {"name": "admin user", "email": "", "level": "manager", "active": "1"}
    with sessions() as s:
        form["email"] = s.get_one(User, admin.user_id).email
    refused = admin.post(f"/admin/users/{admin.user_id}", form)
    assert refused.status_code == 422
    assert "último administrador ativo" in error_beside(refused.text, "level")
    with sessions() as s:
        assert s.get_one(User, admin.user_id).level == "admin"
