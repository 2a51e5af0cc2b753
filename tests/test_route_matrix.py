"""Every route against every level: who reaches it, who is turned away.

``ACCESS`` names each route's least level, or how it is reached without one. A route missing
from it fails the test, so a new route must say who may call it. Each route is then called as
no one, an agent, a manager and an admin, logged in (session cookie, with its CSRF token) and
by a token bound to the level: a level at or above the route's never gets 401 or 403 (any other
answer is fine: dummy ids give 404, empty bodies 422, routes that need the loaded model 500 here,
where none is); a level below gets 403, and no one 401 (a page: 303 to /login).

The scoped cases follow: an agent sees their team's conversations, theirs and the common queue's
(no team), and another team's answer 404, as an id that does not exist does.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from server.app import create_app
from server.schema import Contact, Conversation, Message, Team, TeamMember, User
from server.services import api_tokens, auth, instances
from server.settings import Settings, get_settings, use_settings

LEVELS = ["agent", "manager", "admin"]
# "public": anyone, the answer the same whoever asks. "own": its own credentials (a gateway's
# signature, the simulator's key, a /v1 token): the answer the same whoever asks, level or not.
ACCESS: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): "public",
    ("GET", "/docs"): "public",
    ("GET", "/docs/oauth2-redirect"): "public",
    ("GET", "/redoc"): "public",
    ("GET", "/health"): "public",
    ("GET", "/login"): "public",
    ("POST", "/auth/login"): "public",
    ("POST", "/auth/logout"): "public",
    ("GET", "/auth/me"): "agent",
    ("POST", "/webhooks/{provider}/{instance}/{event}"): "own",
    ("POST", "/webhooks/{provider}/{instance}"): "own",
    ("GET", "/webhooks/cloud/{instance}"): "own",
    ("GET", "/v1/models"): "own",
    ("POST", "/v1/chat/completions"): "own",
    ("GET", "/simulator"): "public",
    ("POST", "/simulator/api/{instance}/messages"): "own",
    ("GET", "/simulator/api/{instance}/messages"): "own",
    ("GET", "/simulator/api/{instance}/session"): "own",
    ("POST", "/simulator/api/{instance}/session"): "own",
    ("POST", "/simulator/api/{instance}/send"): "own",
    # Conversations, their messages and contacts: agents, in what they may see.
    ("GET", "/api/conversations/{conversation_id}/messages"): "agent",
    ("GET", "/api/messages/{message_id}"): "agent",
    ("POST", "/api/conversations/{conversation_id}/handoff"): "agent",
    ("POST", "/api/conversations/{conversation_id}/assign"): "agent",
    ("POST", "/api/conversations/{conversation_id}/close"): "agent",
    ("POST", "/api/conversations/{conversation_id}/reopen"): "agent",
    ("GET", "/api/conversations/{conversation_id}/session"): "agent",
    ("POST", "/api/conversations/{conversation_id}/messages"): "agent",
    ("POST", "/api/conversations/{conversation_id}/template"): "agent",
    # The inbox's API: the list, reading, notes, take-over, files, canned responses, presence.
    ("GET", "/api/conversations"): "agent",
    ("POST", "/api/conversations/{conversation_id}/read"): "agent",
    ("GET", "/api/conversations/{conversation_id}/notes"): "agent",
    ("POST", "/api/conversations/{conversation_id}/notes"): "agent",
    ("POST", "/api/conversations/{conversation_id}/scheduled"): "agent",
    ("GET", "/api/scheduled"): "agent",
    ("POST", "/api/scheduled/{schedule_id}/cancel"): "agent",
    ("POST", "/api/conversations/{conversation_id}/take-over"): "agent",
    ("POST", "/api/conversations/{conversation_id}/give-back"): "agent",
    ("GET", "/api/messages/{message_id}/media"): "agent",
    ("GET", "/api/canned-responses"): "agent",
    ("POST", "/api/canned-responses"): "manager",
    ("PATCH", "/api/canned-responses/{canned_id}"): "manager",
    ("DELETE", "/api/canned-responses/{canned_id}"): "manager",
    ("PUT", "/api/presence"): "agent",
    ("GET", "/api/contacts/{contact_id}/tags"): "agent",
    ("PUT", "/api/contacts/{contact_id}/tags"): "agent",
    ("DELETE", "/api/contacts/{contact_id}/tags/{name}"): "agent",
    ("GET", "/api/contacts/{contact_id}/fields"): "agent",
    ("PATCH", "/api/contacts/{contact_id}/fields"): "agent",
    ("GET", "/api/contacts"): "agent",
    ("GET", "/api/contacts/{contact_id}"): "agent",
    ("PATCH", "/api/contacts/{contact_id}"): "agent",
    ("GET", "/api/contacts/export"): "manager",
    ("POST", "/api/contacts/import"): "manager",
    ("GET", "/api/contacts/{contact_id}/duplicates"): "manager",
    ("POST", "/api/contacts/{contact_id}/merge"): "manager",
    # Flows, reports, and reading tags and fields: managers.
    ("GET", "/api/flows"): "manager",
    ("POST", "/api/flows/import"): "manager",
    ("POST", "/api/flows/validate"): "manager",
    ("GET", "/api/flows/{key}"): "manager",
    ("PUT", "/api/flows/{key}"): "manager",
    ("GET", "/api/flows/{key}/export"): "manager",
    ("PATCH", "/api/flows/{key}"): "manager",
    ("DELETE", "/api/flows/{key}"): "manager",
    ("GET", "/api/reports/usage"): "manager",
    ("GET", "/api/tags"): "manager",
    ("GET", "/api/fields"): "manager",
    # The rest of /api: admins.
    ("POST", "/api/tags"): "admin",
    ("PATCH", "/api/tags/{tag_id}"): "admin",
    ("DELETE", "/api/tags/{tag_id}"): "admin",
    ("POST", "/api/fields"): "admin",
    ("PATCH", "/api/fields/{key}"): "admin",
    ("DELETE", "/api/fields/{key}"): "admin",
    ("GET", "/api/instances"): "admin",
    ("POST", "/api/instances"): "admin",
    ("GET", "/api/instances/{name}"): "admin",
    ("PATCH", "/api/instances/{name}"): "admin",
    ("DELETE", "/api/instances/{name}"): "admin",
    ("POST", "/api/instances/{name}/webhook-secret"): "admin",
    ("GET", "/api/instances/{name}/health"): "admin",
    ("POST", "/api/instances/{name}/check"): "admin",
    ("GET", "/api/instances/{name}/qr"): "admin",
    ("GET", "/api/instances/{name}/unsupported"): "admin",
    ("GET", "/api/outbox/failed"): "admin",
    ("POST", "/api/outbox/{outbox_id}/replay"): "admin",
    ("GET", "/api/users"): "admin",
    ("POST", "/api/users"): "admin",
    ("PATCH", "/api/users/{user_id}"): "admin",
    ("GET", "/api/teams"): "admin",
    ("POST", "/api/teams"): "admin",
    ("PATCH", "/api/teams/{team_id}"): "admin",
    ("PUT", "/api/teams/{team_id}/members/{user_id}"): "admin",
    ("DELETE", "/api/teams/{team_id}/members/{user_id}"): "admin",
    ("GET", "/api/kb"): "admin",
    ("GET", "/api/kb/{collection}/documents"): "admin",
    ("POST", "/api/kb/{collection}/documents"): "admin",
    ("DELETE", "/api/kb/{collection}/documents/{doc}"): "admin",
    ("GET", "/api/kb/{collection}/passages/{passage_id}"): "admin",
    ("GET", "/api/kb/{collection}/answer-mode"): "admin",
    ("GET", "/api/models/versions"): "admin",
    ("GET", "/api/models/history"): "admin",
    ("GET", "/api/models/answer-modes"): "admin",
    ("POST", "/api/models/versions/{name}/promote"): "admin",
    ("POST", "/api/models/rollback"): "admin",
}
# The web app's pages (a browser with no session is sent to /login). One section per area.
PAGES: dict[tuple[str, str], str] = {
    ("GET", "/"): "agent",
    ("GET", "/lang/{code}"): "public",
    # inbox pages
    ("GET", "/inbox"): "agent",
    ("GET", "/inbox/events"): "agent",
    ("GET", "/inbox/messages/{message_id}"): "agent",
    ("GET", "/inbox/{conversation_id}"): "agent",
    ("POST", "/inbox/presence"): "agent",
    ("POST", "/inbox/{conversation_id}/send"): "agent",
    ("POST", "/inbox/{conversation_id}/notes"): "agent",
    ("POST", "/inbox/{conversation_id}/scheduled"): "agent",
    ("POST", "/inbox/{conversation_id}/scheduled/{schedule_id}/cancel"): "agent",
    ("POST", "/inbox/{conversation_id}/assign"): "agent",
    ("POST", "/inbox/{conversation_id}/transfer"): "agent",
    ("POST", "/inbox/{conversation_id}/close"): "agent",
    ("POST", "/inbox/{conversation_id}/reopen"): "agent",
    ("POST", "/inbox/{conversation_id}/take-over"): "agent",
    ("POST", "/inbox/{conversation_id}/give-back"): "agent",
    ("GET", "/inbox/canned"): "agent",
    ("GET", "/inbox/canned/suggest"): "agent",
    ("POST", "/inbox/canned"): "manager",
    ("POST", "/inbox/canned/{canned_id}"): "manager",
    ("POST", "/inbox/canned/{canned_id}/delete"): "manager",
    # contacts pages
    ("GET", "/contacts"): "agent",
    ("GET", "/contacts/import"): "manager",
    ("POST", "/contacts/import"): "manager",
    ("GET", "/contacts/{contact_id}"): "agent",
    ("POST", "/contacts/{contact_id}"): "agent",
    ("POST", "/contacts/{contact_id}/tags"): "agent",
    ("POST", "/contacts/{contact_id}/merge"): "manager",
    # admin pages
    ("GET", "/admin/tags"): "manager",
    ("GET", "/admin/reports"): "manager",
    ("POST", "/admin/tags"): "admin",
    ("GET", "/admin/tags/{tag_id}"): "admin",
    ("POST", "/admin/tags/{tag_id}"): "admin",
    ("POST", "/admin/tags/{tag_id}/delete"): "admin",
    ("GET", "/admin/fields"): "manager",
    ("POST", "/admin/fields"): "admin",
    ("GET", "/admin/fields/{key}"): "admin",
    ("POST", "/admin/fields/{key}"): "admin",
    ("POST", "/admin/fields/{key}/delete"): "admin",
    ("GET", "/admin/teams"): "admin",
    ("GET", "/admin/teams/new"): "admin",
    ("POST", "/admin/teams"): "admin",
    ("GET", "/admin/teams/{team_id}"): "admin",
    ("POST", "/admin/teams/{team_id}"): "admin",
    ("POST", "/admin/teams/{team_id}/members"): "admin",
    ("POST", "/admin/teams/{team_id}/members/{user_id}/remove"): "admin",
    ("GET", "/admin/users"): "admin",
    ("GET", "/admin/users/new"): "admin",
    ("POST", "/admin/users"): "admin",
    ("GET", "/admin/users/{user_id}"): "admin",
    ("POST", "/admin/users/{user_id}"): "admin",
    ("POST", "/admin/users/{user_id}/password"): "admin",
    ("GET", "/admin/instances"): "admin",
    ("GET", "/admin/instances/new"): "admin",
    ("POST", "/admin/instances"): "admin",
    ("GET", "/admin/instances/{name}"): "admin",
    ("POST", "/admin/instances/{name}"): "admin",
    ("GET", "/admin/instances/{name}/qr"): "admin",
    ("POST", "/admin/instances/{name}/check"): "admin",
    ("POST", "/admin/instances/{name}/secret"): "admin",
    ("POST", "/admin/instances/{name}/replay/{outbox_id}"): "admin",
    ("POST", "/admin/instances/{name}/delete"): "admin",
}
ACCESS.update(PAGES)
# What goes in a path's blanks: ids that exist nowhere, names of nothing.
BLANKS = {"provider": "simulator", "event": "messages", "passage_id": "0", "code": "en"}
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app answers, pages and API alike (HEAD aside)."""
    return {(m, rc.path) for rc in iter_route_contexts(app.routes) if rc.path
            for m in (rc.methods or set()) - {"HEAD"}}


def url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: BLANKS.get(
        m.group(1), "999999" if m.group(1).endswith("_id") else "nada"), path)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Iterator[Settings]:
    saved = get_settings()
    yield use_settings(Settings(data_dir=tmp_path, database_url=db_url,
                                admin_token="test-admin-token", simulator_enabled=True))
    use_settings(saved)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


def _user(sessions: sessionmaker[Session], level: str, teams: tuple[int, ...] = ()) -> int:
    with sessions.begin() as s:
        user = User(name=level, email=f"{level}-{secrets.token_hex(4)}@loja.com", level=level,
                    active=True, online=False)
        s.add(user)
        s.flush()
        s.add_all(TeamMember(team_id=t, user_id=user.id) for t in teams)
        return user.id


class Caller:
    """Asks as one level (or no one), by a session cookie or a bearer token, always with a
    valid CSRF token: what turns a caller away here is the level, never a missing token."""

    def __init__(self, app: FastAPI, settings: Settings, sessions: sessionmaker[Session],
                 csrf: str, level: str | None, by: str) -> None:
        self.client = TestClient(app, raise_server_exceptions=False)
        self.settings, self.sessions, self.csrf = settings, sessions, csrf
        self.headers: dict[str, str] = {}
        self.user = _user(sessions, level) if level and by == "session" else None
        if level and by == "token":
            self.headers["Authorization"] = "Bearer " + api_tokens.create(
                sessions, f"t-{level}", level=level)

    def call(self, method: str, path: str) -> Any:
        cookies = {"csrftoken": self.csrf}
        if self.user is not None:  # a fresh session each time: logout ends the one it gets
            cookies[auth.COOKIE] = auth.start_session(self.sessions, self.settings,
                                                      self.user).token
        self.client.cookies.clear()
        for name, value in cookies.items():
            self.client.cookies.set(name, value)
        return self.client.request(method, url(path), follow_redirects=False,
                                   headers={**self.headers, "X-CSRFToken": self.csrf})


def test_every_route_says_who_may_call_it(app: FastAPI) -> None:
    served = routes(app)
    assert not served - ACCESS.keys(), "say in ACCESS who may call these routes"
    assert not ACCESS.keys() - served, "ACCESS names routes the app no longer has"


@sqlite_only
@pytest.mark.parametrize("by", ["session", "token"])
def test_each_level_reaches_what_it_may_and_no_more(
        app: FastAPI, settings: Settings, sessions: sessionmaker[Session], by: str) -> None:
    csrf = TestClient(app).get("/login").cookies["csrftoken"]
    callers = {level: Caller(app, settings, sessions, csrf, level, by)
               for level in [None, *LEVELS]}
    wrong = []
    for method, path in sorted(routes(app) & ACCESS.keys()):  # the rest fail the test above
        least = ACCESS[(method, path)]
        got = {level: callers[level].call(method, path) for level in callers}
        codes = {level: r.status_code for level, r in got.items()}
        if by == "token" and (method, path) in PAGES and least in LEVELS:
            # A page is a browser's: a bearer token is no session, so any level goes to /login.
            if any(r.status_code != 303 for r in got.values()):
                wrong.append((method, path, codes))
            continue
        if least in ("public", "own"):
            if len(set(codes.values())) != 1 or (least == "public" and codes[None] in (401, 403)):
                wrong.append((method, path, codes))
            continue
        rank = LEVELS.index(least)
        for level, r in got.items():
            allowed = level is not None and LEVELS.index(level) >= rank
            if allowed:
                ok = r.status_code not in (401, 403)
            elif level is None:
                ok = r.status_code == 401 or (r.status_code == 303 and r.headers[
                    "location"].startswith("/login"))
            else:
                ok = r.status_code == 403
            if not ok:
                wrong.append((method, path, codes))
                break
    assert not wrong


@sqlite_only
def test_every_page_opened_by_its_address_draws(
        app: FastAPI, settings: Settings, sessions: sessionmaker[Session]) -> None:
    """A page a browser opens by its address (a bookmark, a reload, a link in a new tab: no
    HTMX header) answers its level with no server error, fragments included."""
    csrf = TestClient(app).get("/login").cookies["csrftoken"]
    callers = {level: Caller(app, settings, sessions, csrf, level, "session")
               for level in LEVELS}
    failed = {}
    for method, path in sorted(PAGES):
        least = ACCESS[(method, path)]
        if method == "GET" and "{" not in path and least in LEVELS:
            code = callers[least].call(method, path).status_code
            if code >= 500:
                failed[path] = code
    assert not failed


@sqlite_only
def test_a_live_stream_ends_when_its_user_is_deactivated(
        app: FastAPI, settings: Settings, sessions: sessionmaker[Session]) -> None:
    """The inbox's live stream is asked again who is watching at each look: a person
    deactivated meanwhile stops getting news of the conversations at once, not after the
    five minutes a stream lasts."""
    user = _user(sessions, "agent")
    client = TestClient(app)
    client.cookies.set(auth.COOKIE, auth.start_session(sessions, settings, user).token)
    ended = threading.Event()

    def watch() -> None:
        with client.stream("GET", "/inbox/events", params={"since": time.time()}) as resp:
            assert resp.status_code == 200
            for _ in resp.iter_lines():
                pass
        ended.set()

    threading.Thread(target=watch, daemon=True).start()
    time.sleep(1.5)
    assert not ended.is_set()  # a stream goes on while its person may watch
    with sessions.begin() as s:
        deactivated = s.get(User, user)
        assert deactivated is not None
        deactivated.active = False
    assert ended.wait(15), "the stream went on after its user was deactivated"


@sqlite_only
def test_a_token_of_the_openai_endpoint_reaches_no_api_route(
        app: FastAPI, sessions: sessionmaker[Session]) -> None:
    bot = {"Authorization": "Bearer " + api_tokens.create(sessions, "bot", "default")}
    client = TestClient(app, raise_server_exceptions=False)
    for method, path in sorted(routes(app) & ACCESS.keys() - PAGES.keys()):
        if ACCESS[(method, path)] in LEVELS:
            assert client.request(method, url(path), headers=bot).status_code == 403, path


def _conversation(s: Session, inst: int, phone: str, team: int | None = None,
                  assignee: int | None = None) -> tuple[int, int, int]:
    """A conversation with one customer message: (conversation, message, contact) ids."""
    contact = Contact(name=f"cliente {phone}", phone=phone)
    s.add(contact)
    s.flush()
    conv = Conversation(contact_id=contact.id, instance_id=inst, address=phone,
                        team_id=team, assignee_id=assignee)
    s.add(conv)
    s.flush()
    msg = Message(instance_id=inst, conversation_id=conv.id, direction="in", author="customer",
                  text="oi", status="answered")
    s.add(msg)
    s.flush()
    return conv.id, msg.id, contact.id


def test_an_agent_sees_their_teams_their_own_and_the_common_queue(
        app: FastAPI, settings: Settings, sessions: sessionmaker[Session]) -> None:
    inst = instances.ensure_simulator(sessions, "loja", "http://127.0.0.1:9").id
    with sessions.begin() as s:
        a, b = Team(name="atendimento"), Team(name="trocas")
        s.add_all([a, b])
        s.flush()
        team_a, team_b = a.id, b.id
    agent = _user(sessions, "agent", (team_a,))
    manager = _user(sessions, "manager", (team_a, team_b))
    with sessions.begin() as s:
        ours = _conversation(s, inst, "5511900000001", team=team_a)
        theirs = _conversation(s, inst, "5511900000002", team=team_b)
        queue = _conversation(s, inst, "5511900000003")
        mine = _conversation(s, inst, "5511900000004", team=team_b, assignee=agent)

    def client_of(user: int) -> TestClient:
        client = TestClient(app)
        client.cookies.set(auth.COOKIE, auth.start_session(sessions, settings, user).token)
        return client

    def reads(client: TestClient, ids: tuple[int, int, int]) -> set[int]:
        conv, msg, contact = ids
        return {client.get(f"/api/conversations/{conv}/messages").status_code,
                client.get(f"/api/conversations/{conv}/session").status_code,
                client.get(f"/api/messages/{msg}").status_code,
                client.get(f"/api/contacts/{contact}/tags").status_code,
                client.get(f"/api/contacts/{contact}/fields").status_code}

    as_agent = client_of(agent)
    assert as_agent.get("/auth/me").json()["teams"] == [{"id": team_a, "name": "atendimento"}]
    for seen in (ours, queue, mine):
        assert reads(as_agent, seen) == {200}, seen
    assert reads(as_agent, theirs) == {404}
    # Another team's answer is an unknown id's: same status, same words.
    conv, msg, contact = theirs
    for path, unknown in [(f"/api/messages/{msg}", "/api/messages/999999"),
                          (f"/api/contacts/{contact}/tags", "/api/contacts/999999/tags"),
                          (f"/api/conversations/{conv}/session",
                           "/api/conversations/999999/session")]:
        hidden, missing = as_agent.get(path).json(), as_agent.get(unknown).json()
        assert hidden["detail"].replace(str(conv), "N").replace(str(msg), "N").replace(
            str(contact), "N") == missing["detail"].replace("999999", "N")
    # Writing to it is refused the same way, and nothing happens to it.
    csrf = as_agent.cookies["csrftoken"]  # every answer gave it
    closed = as_agent.post(f"/api/conversations/{conv}/close", headers={"X-CSRFToken": csrf})
    assert closed.status_code == 404
    with sessions() as s:
        assert s.get(Conversation, conv).status == "open"  # type: ignore[union-attr]
    # The manager of both teams sees all four; so does an admin, by the setting's token.
    as_manager = client_of(manager)
    admin = TestClient(app, headers={"Authorization": "Bearer test-admin-token"})
    for ids in (ours, theirs, queue, mine):
        assert reads(as_manager, ids) == {200}
        assert reads(admin, ids) == {200}
    # And the agent may work what they see.
    ok = as_agent.post(f"/api/conversations/{ours[0]}/close", headers={"X-CSRFToken": csrf})
    assert ok.status_code == 204
