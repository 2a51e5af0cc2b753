"""Logging in, on each database: argon2 passwords, sessions that expire and end at logout, a
throttle on guessing, CSRF on cookie-borne requests, cookies a script cannot read, API tokens
bound to a level, and ATENDE_ADMIN_TOKEN kept as a hash like any other token."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import Depends
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import SecretStr
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from server.app import create_app
from server.deps import require_page
from server.schema import ApiToken, Base, LoginAttempt, User, WebSession, utcnow
from server.services import api_tokens, auth
from server.settings import Settings, get_settings, use_settings

PASSWORD = "cavalo-correto-42"
ADMIN = {"Authorization": "Bearer test-admin-token"}
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Iterator[Settings]:
    saved = get_settings()
    yield use_settings(Settings(data_dir=tmp_path, database_url=db_url,
                                admin_token="test-admin-token", login_max_failures=3))
    use_settings(saved)


@pytest.fixture
def client(settings: Settings) -> TestClient:
    """The app (no lifespan: the database is migrated, no model loads)."""
    return TestClient(create_app(settings))


@pytest.fixture
def ana(sessions: sessionmaker[Session]) -> User:
    return auth.create_user(sessions, "Ana Souza", "ana@loja.com", "agent", PASSWORD)


def csrf(client: TestClient) -> str:
    """The CSRF token, as a page gives it (a script reads the cookie; a form has it)."""
    if "csrftoken" not in client.cookies:
        client.get("/login")
    return client.cookies["csrftoken"]


def login(client: TestClient, email: str, password: str) -> Response:
    return client.post("/auth/login", json={"email": email, "password": password},
                       headers={"X-CSRFToken": csrf(client)})


def test_a_right_password_logs_in_and_every_wrong_answer_reads_the_same(
        client: TestClient, ana: User, sessions: sessionmaker[Session]) -> None:
    ok = login(client, "  ANA@loja.com ", PASSWORD)
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"kind": "user", "id": ana.id, "name": "Ana Souza",
                         "email": "ana@loja.com", "level": "agent", "teams": []}
    assert client.get("/auth/me").json() == ok.json()
    with sessions() as s:
        stored = s.scalar(select(User.password_hash).where(User.id == ana.id))
        session_row = s.scalars(select(WebSession)).one()
    assert stored and stored.startswith("$argon2id$") and PASSWORD not in stored
    # Only the session token's hash is kept, never the cookie's value.
    token = client.cookies[auth.COOKIE]
    assert session_row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    with sessions.begin() as s:  # a user with no password yet, as the admin API makes them
        s.add(User(name="Bia", email="bia@loja.com", level="agent", active=True, online=False))
    answers = [login(TestClient(client.app), email, password)
               for email, password in [("ana@loja.com", "outra-senha"),
                                       ("ninguem@loja.com", PASSWORD),
                                       ("bia@loja.com", "")]]
    assert {(r.status_code, r.text) for r in answers} == {
        (401, '{"detail":"wrong e-mail or password"}')}
    assert all(auth.COOKIE not in r.cookies for r in answers)


def test_cookies_are_httponly_lax_and_secure_over_https(settings: Settings, ana: User) -> None:
    for base, secure in [("http://testserver", False), ("https://testserver", True)]:
        client = TestClient(create_app(settings), base_url=base)
        set_cookie = login(client, "ana@loja.com", PASSWORD).headers.get_list("set-cookie")
        session = next(c for c in set_cookie if c.startswith(f"{auth.COOKIE}="))
        flags = {f.strip().lower() for f in session.split(";")[1:]}
        assert {"httponly", "samesite=lax", "path=/"} <= flags
        assert ("secure" in flags) is secure
        assert any(f.startswith("max-age=") for f in flags)
        # The CSRF cookie is read by the pages' scripts, so not HttpOnly; Secure alike.
        page = TestClient(create_app(settings), base_url=base).get("/login")
        token = page.headers["set-cookie"].lower()
        assert "samesite=lax" in token and "httponly" not in token
        assert ("secure" in token) is secure


def test_a_session_ends_when_it_expires_at_logout_and_when_its_user_is_deactivated(
        client: TestClient, ana: User, sessions: sessionmaker[Session]) -> None:
    assert login(client, "ana@loja.com", PASSWORD).status_code == 200
    assert client.get("/auth/me").status_code == 200
    with sessions.begin() as s:
        s.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get("/auth/me").status_code == 401
    # Logout: the cookie is cleared, and the old value, sent again, is refused.
    assert login(client, "ana@loja.com", PASSWORD).status_code == 200
    kept = client.cookies[auth.COOKIE]
    out = client.post("/auth/logout", headers={"X-CSRFToken": csrf(client)})
    assert out.status_code == 204 and auth.COOKIE not in client.cookies
    replay = TestClient(client.app)
    replay.cookies.set(auth.COOKIE, kept)
    assert replay.get("/auth/me").status_code == 401
    with sessions() as s:  # ended, not deleted
        rows = s.scalars(select(WebSession).order_by(WebSession.id)).all()
        assert len(rows) == 2 and rows[1].revoked_at is not None
    # Deactivated: the live session stops working at once, and logging in is refused.
    assert login(client, "ana@loja.com", PASSWORD).status_code == 200
    off = TestClient(client.app).patch(f"/api/users/{ana.id}", headers=ADMIN,
                                       json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    assert client.get("/auth/me").status_code == 401
    assert login(client, "ana@loja.com", PASSWORD).status_code == 401


def test_a_new_password_ends_the_old_sessions(client: TestClient, ana: User,
                                              sessions: sessionmaker[Session]) -> None:
    assert login(client, "ana@loja.com", PASSWORD).status_code == 200
    auth.set_password(sessions, "ana@loja.com", "nova-senha-segura")
    assert client.get("/auth/me").status_code == 401
    assert login(client, "ana@loja.com", PASSWORD).status_code == 401
    assert login(client, "ana@loja.com", "nova-senha-segura").status_code == 200


def test_repeated_failures_are_throttled_by_email_and_by_address(
        client: TestClient, ana: User, sessions: sessionmaker[Session]) -> None:
    for _ in range(3):  # ATENDE_LOGIN_MAX_FAILURES here
        assert login(client, "ana@loja.com", "chute").status_code == 401
    blocked = login(client, "ana@loja.com", PASSWORD)  # the right one: not even checked
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["Retry-After"]) <= 15 * 60
    assert auth.COOKIE not in blocked.cookies
    # The same address trying another e-mail is throttled too, known or not.
    assert login(client, "ninguem@loja.com", "chute").status_code == 429
    with sessions() as s:  # throttled tries checked nothing, so they are not counted
        assert s.query(LoginAttempt).count() == 3
    # The login page says so next to the form, with the same Retry-After.
    page = client.post("/auth/login", data={"email": "ana@loja.com", "password": PASSWORD,
                                            "csrftoken": csrf(client)})
    assert page.status_code == 429 and "Muitas tentativas" in page.text
    assert page.headers["Retry-After"]
    # Once the window has passed, the right password works again.
    with sessions.begin() as s:
        for attempt in s.scalars(select(LoginAttempt)):
            attempt.at -= timedelta(minutes=15)
    assert login(client, "ana@loja.com", PASSWORD).status_code == 200


@sqlite_only
def test_a_good_login_clears_the_emails_count_but_not_the_addresss(
        settings: Settings, ana: User, sessions: sessionmaker[Session]) -> None:
    now = utcnow()
    with sessions.begin() as s:
        for i, (email, ip, ok) in enumerate([("ana@loja.com", "10.0.0.1", False)] * 3
                                             + [("ana@loja.com", "10.0.0.2", True)]):
            s.add(LoginAttempt(email=email, ip=ip, ok=ok, at=now - timedelta(minutes=4 - i)))
    with sessions() as s:
        assert auth.retry_after(s, settings, "ana@loja.com", "10.0.0.3", now) == 0
        # The address that failed three times waits until its oldest failure is 15 min old.
        assert auth.retry_after(s, settings, "bia@loja.com", "10.0.0.1", now) == 11 * 60


def test_csrf_guards_requests_that_carry_the_session_cookie(
        client: TestClient, ana: User, sessions: sessionmaker[Session]) -> None:
    # Logging in needs the token, cookie or not: no one logs a browser in from elsewhere.
    bare = TestClient(client.app)
    assert bare.post("/auth/login", json={"email": "ana@loja.com",
                                          "password": PASSWORD}).status_code == 403
    assert login(client, "ana@loja.com", PASSWORD).status_code == 200
    token = csrf(client)
    refused = client.post("/auth/logout")
    assert refused.status_code == 403 and client.get("/auth/me").status_code == 200
    wrong = client.post("/auth/logout", headers={"X-CSRFToken": token[:-2] + "xx"})
    assert wrong.status_code == 403
    # A form's hidden field counts as the header.
    form = client.post("/auth/logout", data={"csrftoken": token}, follow_redirects=False)
    assert form.status_code == 303 and form.headers["location"] == "/login"
    assert client.get("/auth/me").status_code == 401
    # Bearer clients carry no session cookie, so no token is asked of them.
    made = TestClient(client.app).post("/api/tags", headers=ADMIN, json={"name": "vip"})
    assert made.status_code == 201
    # Webhooks and the simulator are not checked even with the cookie.
    assert login(client, "ana@loja.com", PASSWORD).status_code == 200
    hook = client.post("/webhooks/simulator/nenhum", json={})
    assert hook.status_code != 403


def test_the_login_page_has_the_token_says_what_went_wrong_and_goes_back(
        client: TestClient, ana: User) -> None:
    page = client.get("/login", params={"next": "/simulator?x=1"})
    assert page.status_code == 200 and 'lang="pt-BR"' in page.text and "Senha" in page.text
    token = client.cookies["csrftoken"]
    assert f'name="csrftoken" value="{token}"' in page.text
    assert 'name="next" value="/simulator?x=1"' in page.text
    bad = client.post("/auth/login", data={"email": "ana@loja.com", "password": "errada!!",
                                           "csrftoken": token, "next": "/simulator"})
    assert bad.status_code == 401 and "E-mail ou senha incorretos." in bad.text
    assert 'value="ana@loja.com"' in bad.text  # kept, the password not
    good = client.post("/auth/login", data={"email": "ana@loja.com", "password": PASSWORD,
                                            "csrftoken": token, "next": "/simulator"},
                       follow_redirects=False)
    assert good.status_code == 303 and good.headers["location"] == "/simulator"
    assert auth.COOKIE in client.cookies
    # Never on to another site.
    for elsewhere in ("//evil.example", "https://evil.example", "/\\evil.example"):
        out = client.post("/auth/login", data={"email": "ana@loja.com", "password": PASSWORD,
                                               "csrftoken": token, "next": elsewhere},
                          follow_redirects=False)
        assert out.headers["location"] == "/"
    assert client.get("/", follow_redirects=False).headers["location"] == "/inbox"


def test_a_page_sends_a_browser_without_a_session_to_the_login(
        settings: Settings, sessions: sessionmaker[Session], ana: User) -> None:
    app = create_app(settings)

    @app.get("/relatorios", dependencies=[Depends(require_page("manager"))])
    def reports_page() -> dict[str, str]:
        return {"ok": "yes"}

    client = TestClient(app)
    away = client.get("/relatorios?dia=1", follow_redirects=False)
    assert away.status_code == 303
    assert away.headers["location"] == "/login?next=%2Frelatorios%3Fdia%3D1"
    assert login(client, "ana@loja.com", PASSWORD).status_code == 200
    assert client.get("/relatorios").status_code == 403  # an agent
    boss = auth.create_user(sessions, "Caio", "caio@loja.com", "manager", PASSWORD)
    theirs = TestClient(app)
    theirs.cookies.set(auth.COOKIE, auth.start_session(sessions, settings, boss.id).token)
    assert theirs.get("/relatorios").json() == {"ok": "yes"}


def test_tokens_bound_to_a_level_reach_what_that_level_may(
        client: TestClient, sessions: sessionmaker[Session]) -> None:
    manager = {"Authorization": f"Bearer {api_tokens.create(sessions, 'crm', level='manager')}"}
    for_v1 = {"Authorization": f"Bearer {api_tokens.create(sessions, 'bot', 'default')}"}
    assert client.get("/api/flows", headers=manager).status_code == 200
    assert client.get("/api/tags", headers=manager).status_code == 200
    assert client.get("/api/users", headers=manager).status_code == 403
    assert client.post("/api/tags", headers=manager, json={"name": "x"}).status_code == 403
    me = client.get("/auth/me", headers=manager).json()
    assert me == {"kind": "token", "id": None, "name": "crm", "email": None,
                  "level": "manager", "teams": []}
    # A /v1 token reaches no /api route, and a level token does not answer on /v1.
    refused = client.get("/api/flows", headers=for_v1)
    assert refused.status_code == 403 and "/v1" in refused.json()["detail"]
    assert client.get("/v1/models", headers=manager).status_code == 401
    # Revoked, or wrong: no one, whatever cookie comes with it.
    assert api_tokens.revoke(sessions, "crm")
    assert client.get("/api/flows", headers=manager).status_code == 401
    assert client.get("/api/flows", headers={"Authorization": "Bearer nope"}).status_code == 401
    with pytest.raises(ValueError, match="one of them"):
        api_tokens.create(sessions, "both", "default", "admin")
    with pytest.raises(ValueError, match="level"):
        api_tokens.create(sessions, "boss", level="owner")


def _everything(sessions: sessionmaker[Session]) -> str:
    """Every row of every table, as text."""
    with sessions() as s:
        return "\n".join(str(row) for table in Base.metadata.sorted_tables
                         for row in s.execute(select(table)))


def test_the_admin_token_setting_is_a_hashed_token_that_follows_the_setting(
        settings: Settings, client: TestClient, sessions: sessionmaker[Session]) -> None:
    assert client.get("/api/users", headers=ADMIN).status_code == 200
    with sessions() as s:
        row = s.scalars(select(ApiToken)).one()
    assert (row.name, row.level) == ("ATENDE_ADMIN_TOKEN", "admin")
    assert row.token_hash == hashlib.sha256(b"test-admin-token").hexdigest()
    assert "test-admin-token" not in _everything(sessions)
    # Changed: the new value works, the old one is refused; still one token.
    use_settings(settings.model_copy(update={"admin_token": SecretStr("another-long-admin-token")}))
    again = TestClient(create_app(get_settings()))
    assert again.get("/api/users", headers=ADMIN).status_code == 401
    assert again.get("/api/users", headers={
        "Authorization": "Bearer another-long-admin-token"}).status_code == 200
    with sessions() as s:
        assert s.scalar(text("SELECT count(*) FROM api_tokens")) == 1
    assert "another-long-admin-token" not in _everything(sessions)
    # Revoked by hand, the same value stays revoked.
    assert api_tokens.revoke(sessions, "ATENDE_ADMIN_TOKEN")
    api_tokens.ensure_setting(sessions, "another-long-admin-token")
    assert again.get("/api/users", headers={
        "Authorization": "Bearer another-long-admin-token"}).status_code == 401


@sqlite_only
def test_the_cli_makes_the_first_admin_and_resets_a_password(
        settings: Settings, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from server.cli import app as atende

    run = CliRunner().invoke
    made = run(atende, ["users", "create", "--admin", "--email", "Chefe@Loja.com", "--name",
                        "Chefe", "--password-stdin"], input=f"{PASSWORD}\n")
    assert made.exit_code == 0, made.output
    short = run(atende, ["users", "create", "--email", "x@loja.com", "--name", "X",
                         "--password-stdin"], input="curta\n")
    assert short.exit_code == 2 and "8 characters" in short.output
    listed = tmp_path / "users.json"
    assert run(atende, ["users", "list", "--json", str(listed)]).exit_code == 0
    assert '"level": "admin"' in listed.read_text() and PASSWORD not in listed.read_text()
    client = TestClient(create_app(settings))
    assert login(client, "chefe@loja.com", PASSWORD).json()["level"] == "admin"
    reset = run(atende, ["users", "password", "chefe@loja.com", "--password-stdin"],
                input="outra-senha-boa\n")
    assert reset.exit_code == 0, reset.output
    assert client.get("/auth/me").status_code == 401
    token = run(atende, ["tokens", "create", "painel", "--level", "agent"])
    plain = next(w for w in token.output.split() if w.startswith("atd_"))
    assert TestClient(client.app).get("/auth/me", headers={
        "Authorization": f"Bearer {plain}"}).json()["level"] == "agent"
