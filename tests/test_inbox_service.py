"""The inbox's services on SQLite and PostgreSQL: the list an agent sees (scoped, filtered,
paged, unread per person), the history with its authors, notes, canned responses, taking over
and giving back, presence, and the live look-out."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.schema import (
    Contact,
    ContactTag,
    Conversation,
    Instance,
    Message,
    Tag,
    Team,
    TeamMember,
    User,
    utcnow,
)
from server.services import canned, desk, inbox_live, instances, notes, sending, thread
from server.services.access import Principal, of_user
from server.services.contact_data import Invalid
from server.services.inbox import InboxFilter, listing, parse_cursor
from server.settings import Settings


@pytest.fixture
def company(sessions: sessionmaker[Session], inst: Instance) -> dict[str, int]:
    """Two teams, an agent in the first, and four conversations: the agent's team's, the
    other team's, the common queue's, and one of the other team's assigned to the agent."""
    with sessions.begin() as s:
        a, b = Team(name="atendimento"), Team(name="trocas")
        s.add_all([a, b])
        s.flush()
        ana = User(name="Ana Lima", email="ana@loja.com", level="agent", active=True)
        bia = User(name="Bia Reis", email="bia@loja.com", level="agent", active=True)
        s.add_all([ana, bia])
        s.flush()
        s.add_all([TeamMember(team_id=a.id, user_id=ana.id),
                   TeamMember(team_id=a.id, user_id=bia.id)])
        ids = {"team_a": a.id, "team_b": b.id, "ana": ana.id, "bia": bia.id, "inst": inst.id}
        base = utcnow() - timedelta(hours=1)
        for n, (key, team, assignee, status) in enumerate([
                ("ours", a.id, None, "queued"), ("theirs", b.id, None, "queued"),
                ("queue", None, None, "open"), ("mine", b.id, ana.id, "assigned")]):
            ids[key] = _conversation(s, inst.id, f"55119000000{n}", team=team,
                                     assignee=assignee, status=status,
                                     at=base + timedelta(minutes=n))
    return ids


def _conversation(s: Session, inst: int, phone: str, *, team: int | None = None,
                  assignee: int | None = None, status: str = "open",
                  at: datetime | None = None) -> int:
    contact = Contact(name=f"Cliente {phone[-2:]}", phone=phone)
    s.add(contact)
    s.flush()
    conv = Conversation(contact_id=contact.id, instance_id=inst, address=phone, team_id=team,
                        assignee_id=assignee, status=status, last_inbound_at=at or utcnow(),
                        mode="human" if team else "flow")
    s.add(conv)
    s.flush()
    s.add(Message(instance_id=inst, conversation_id=conv.id, direction="in",
                  author="customer", text="oi, quero trocar", status="answered"))
    s.flush()
    return conv.id


def _who(sessions: sessionmaker[Session], user_id: int) -> Principal:
    with sessions() as s:
        return of_user(s, s.get_one(User, user_id))


def _ids(sessions: sessionmaker[Session], who: Principal, **filters: object) -> list[int]:
    with sessions() as s:
        return [r.id for r in listing(s, who, InboxFilter(**filters))]  # type: ignore[arg-type]


def test_an_agent_lists_what_they_may_see_latest_first(
        sessions: sessionmaker[Session], company: dict[str, int]) -> None:
    ana = _who(sessions, company["ana"])
    assert _ids(sessions, ana) == [company["mine"], company["queue"], company["ours"]]
    admin = Principal(level="admin", token="t")
    assert _ids(sessions, admin) == [company[k] for k in ("mine", "queue", "theirs", "ours")]
    # Filters: pending (queued), open, one team, the common queue, mine, unassigned.
    assert _ids(sessions, ana, status="pending") == [company["ours"]]
    assert _ids(sessions, ana, status="open") == [company["mine"], company["queue"]]
    assert _ids(sessions, ana, team=company["team_a"]) == [company["ours"]]
    assert _ids(sessions, ana, team="none") == [company["queue"]]
    assert _ids(sessions, ana, agent="me") == [company["mine"]]
    assert _ids(sessions, ana, agent="none") == [company["queue"], company["ours"]]
    assert _ids(sessions, admin, team=company["team_b"]) == [company["mine"], company["theirs"]]
    assert _ids(sessions, admin, agent="me") == []  # a token is no one
    # A row says who it is with and who has it.
    with sessions() as s:
        row = listing(s, ana, InboxFilter(agent="me"))[0]
    assert (row.contact, row.team, row.assignee, row.last_text) == (
        "Cliente 03", "trocas", "Ana Lima", "oi, quero trocar")


def test_closed_tag_and_number_filters(sessions: sessionmaker[Session],
                                       company: dict[str, int], settings_for_close: Settings
                                       ) -> None:
    ana = _who(sessions, company["ana"])
    other = instances.ensure_simulator(sessions, "outro", "http://127.0.0.1:9")
    with sessions.begin() as s:
        tag = Tag(name="vip")
        s.add(tag)
        s.flush()
        contact = s.get_one(Conversation, company["queue"]).contact_id
        s.add(ContactTag(contact_id=contact, tag_id=tag.id))
        tag_id = tag.id
        elsewhere = _conversation(s, other.id, "5511988887777")
    assert _ids(sessions, ana, tag=tag_id) == [company["queue"]]
    assert _ids(sessions, ana, instance=company["inst"]) == [
        company["mine"], company["queue"], company["ours"]]
    assert _ids(sessions, ana, instance=other.id) == [elsewhere]
    from server.services import handling

    with sessions.begin() as s:
        handling.close(s, settings_for_close, company["ours"])
    assert _ids(sessions, ana, status="closed") == [company["ours"]]
    assert company["ours"] not in _ids(sessions, ana)  # active: open and pending
    assert company["ours"] in _ids(sessions, ana, status="all")


@pytest.fixture
def settings_for_close(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def test_pages_follow_one_another_without_gaps_or_repeats(
        sessions: sessionmaker[Session], inst: Instance) -> None:
    same = utcnow() - timedelta(minutes=5)
    with sessions.begin() as s:  # several at the very same instant: the id breaks the tie
        made = [_conversation(s, inst.id, f"55118{n:07d}", at=same if n % 2 else
                              same - timedelta(seconds=n)) for n in range(9)]
    admin = Principal(level="admin", token="t")
    seen: list[int] = []
    before = None
    with sessions() as s:
        while True:
            rows = listing(s, admin, InboxFilter(), limit=4, before=before)
            if not rows:
                break
            seen += [r.id for r in rows]
            before = parse_cursor(rows[-1].cursor)
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))
    assert parse_cursor("garbage") is None  # a stale link: the first page


def test_unread_is_per_person(sessions: sessionmaker[Session], company: dict[str, int]) -> None:
    ana, bia = _who(sessions, company["ana"]), _who(sessions, company["bia"])

    def unread(who: Principal) -> int:
        with sessions() as s:
            return next(r.unread for r in listing(s, who, InboxFilter())
                        if r.id == company["ours"])

    assert unread(ana) == unread(bia) == 1
    with sessions.begin() as s:
        thread.mark_read(s, ana, company["ours"])
    assert (unread(ana), unread(bia)) == (0, 1)
    assert company["ours"] not in _ids(sessions, ana, unread=True)
    assert company["ours"] in _ids(sessions, bia, unread=True)
    with sessions.begin() as s:
        for text in ("alô?", "tem alguém?"):
            s.add(Message(instance_id=company["inst"], conversation_id=company["ours"],
                          direction="in", author="customer", text=text, status="pending"))
        s.add(Message(instance_id=company["inst"], conversation_id=company["ours"],
                      direction="out", author="flow", text="Aguarde", status="sent"))
    assert (unread(ana), unread(bia)) == (2, 3)  # our own replies are not unread
    with sessions.begin() as s:
        thread.mark_read(s, ana, company["ours"])
        thread.mark_read(s, ana, company["ours"])  # twice: no duplicate row
    assert unread(ana) == 0


def test_the_history_marks_each_author_and_delivery(
        sessions: sessionmaker[Session], company: dict[str, int], tmp_path: Path) -> None:
    conv = company["ours"]
    ana = _who(sessions, company["ana"])
    with sessions.begin() as s:
        s.add(Message(instance_id=company["inst"], conversation_id=conv, direction="out",
                      author="flow", text="Qual o número do pedido?", status="read"))
    with sessions.begin() as s:
        notes.add(s, ana, conv, "  cliente já trocou uma vez  ")
    sending.agent_message(sessions, conv, text="Oi! Sou a Ana.", data_dir=tmp_path,
                          max_bytes=1000, user_id=company["ana"])
    with sessions() as s:
        head = thread.header(s, conv)
        entries = thread.history(s, conv, head.contact)
    got = [(e.kind, e.author, e.name, e.text, e.status) for e in entries]
    assert got == [
        ("message", "customer", "Cliente 00", "oi, quero trocar", None),
        ("message", "flow", "", "Qual o número do pedido?", "read"),
        ("note", "note", "Ana Lima", "cliente já trocou uma vez", None),
        ("message", "agent", "Ana Lima", "Oi! Sou a Ana.", "queued")]
    assert (head.team, head.status, head.mode) == ("atendimento", "assigned", "human")


def test_a_note_must_say_something_and_is_never_sent(
        sessions: sessionmaker[Session], company: dict[str, int]) -> None:
    ana = _who(sessions, company["ana"])
    with pytest.raises(Invalid) as refused, sessions.begin() as s:
        notes.add(s, ana, company["ours"], "   ")
    assert refused.value.field == "text"
    with pytest.raises(Invalid), sessions.begin() as s:
        notes.add(s, ana, company["ours"], "x" * (notes.MAX_TEXT + 1))
    with sessions.begin() as s:
        notes.add(s, ana, company["ours"], "ok")
    with sessions() as s:
        assert [n.text for n in notes.of(s, company["ours"])] == ["ok"]
        assert s.query(Message).filter_by(conversation_id=company["ours"]).count() == 1


def test_canned_responses(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        prazo = canned.create(s, "/Prazo", "Entregamos em até 5 dias úteis.").id
        canned.create(s, "pix", "Nossa chave Pix é o CNPJ.")
    with pytest.raises(canned.Conflict) as taken, sessions.begin() as s:
        canned.create(s, "prazo", "outra")
    assert taken.value.field == "shortcut"
    for bad in ("", "/", "duas palavras", "x" * 40):
        with pytest.raises(Invalid), sessions.begin() as s:
            canned.create(s, bad, "texto")
    with pytest.raises(Invalid), sessions.begin() as s:
        canned.create(s, "vazio", "  ")
    with sessions() as s:
        assert [c.shortcut for c in canned.listing(s)] == ["pix", "prazo"]
        assert [c.shortcut for c in canned.listing(s, "/pr")] == ["prazo"]
        assert canned.expand(s, "/prazo") == "Entregamos em até 5 dias úteis."
        assert canned.expand(s, " /PRAZO ") == "Entregamos em até 5 dias úteis."
        assert canned.expand(s, "veja /prazo") == "veja /prazo"  # inside a sentence: as is
        assert canned.expand(s, "/nada") == "/nada"
    with sessions.begin() as s:
        canned.update(s, prazo, text="Até 7 dias úteis.")
    with sessions.begin() as s:
        canned.delete(s, canned.listing(s, "pix")[0].id)
    with sessions() as s:
        assert [(c.shortcut, c.text) for c in canned.listing(s)] == [
            ("prazo", "Até 7 dias úteis.")]


def test_take_over_and_give_back(sessions: sessionmaker[Session],
                                 company: dict[str, int]) -> None:
    ana = _who(sessions, company["ana"])
    conv = company["queue"]  # a flow answers it
    with sessions.begin() as s:
        desk.take_over(s, ana, conv)
    with sessions() as s:
        c = s.get_one(Conversation, conv)
        assert (c.mode, c.status, c.assignee_id) == ("human", "assigned", company["ana"])
    with sessions.begin() as s:
        desk.give_back(s, conv)
    with sessions() as s:
        c = s.get_one(Conversation, conv)
        # The number's default: its flow if it has one, else the assistant.
        expected = "flow" if s.get_one(Instance, c.instance_id).default_flow else "ai"
        assert (c.mode, c.status, c.assignee_id) == (expected, "open", None)
    with pytest.raises(desk.NoPerson), sessions.begin() as s:
        desk.take_over(s, Principal(level="admin", token="t"), conv)


def test_presence_follows_login_and_the_toggle(
        sessions: sessionmaker[Session], company: dict[str, int], tmp_path: Path) -> None:
    from server.services import auth

    settings = Settings(data_dir=tmp_path)
    ana = _who(sessions, company["ana"])
    desk.logged_in(sessions, ana)
    with sessions() as s:
        assert desk.is_online(s, ana)
    with sessions.begin() as s:
        assert desk.set_online(s, ana, False) is False
    phone = auth.start_session(sessions, settings, company["ana"]).token
    laptop = auth.start_session(sessions, settings, company["ana"]).token
    desk.logged_in(sessions, ana)
    desk.logging_out(sessions, laptop)  # still logged in on the phone
    auth.logout(sessions, laptop)
    with sessions() as s:
        assert desk.is_online(s, ana)
    desk.logging_out(sessions, phone)  # the last session: away
    with sessions() as s:
        assert not desk.is_online(s, ana)


def test_the_look_out_tells_what_changed_and_only_what_may_be_seen(
        sessions: sessionmaker[Session], company: dict[str, int], tmp_path: Path) -> None:
    ana = _who(sessions, company["ana"])
    watch = inbox_live.Watch(ana, since=utcnow())
    with sessions() as s:
        assert watch.look(s) == set()  # the fixture's rows came before the page
    with sessions.begin() as s:
        notes.add(s, ana, company["ours"], "olhando")
        c = s.get_one(Conversation, company["theirs"])  # another team's: not told
        c.status = "closed"
    with sessions() as s:
        assert watch.look(s) == {company["ours"]}
        assert watch.look(s) == set()  # told once
    sending.agent_message(sessions, company["queue"], text="oi", data_dir=tmp_path,
                          max_bytes=10)
    with sessions() as s:
        assert watch.look(s) == {company["queue"]}
    with sessions.begin() as s:  # a delivery step alone is news too (the ticks on a message)
        from server.services import journey

        last = s.query(Message).filter_by(conversation_id=company["queue"]).order_by(
            Message.id.desc()).first()
        assert last is not None
        journey.record(s, last.id, "delivered")
    with sessions() as s:
        assert watch.look(s) == {company["queue"]}



def test_the_api_answers_from_the_same_services(
        sessions: sessionmaker[Session], company: dict[str, int], tmp_path: Path,
        db_url: str) -> None:
    from fastapi.testclient import TestClient

    from server.app import create_app
    from server.services import auth
    from server.settings import get_settings, use_settings

    saved = get_settings()
    settings = use_settings(Settings(data_dir=tmp_path, database_url=db_url,
                                     admin_token="test-admin-token"))
    try:
        client = TestClient(create_app(settings))
        client.get("/login")
        client.cookies.set(auth.COOKIE, auth.start_session(
            sessions, settings, company["ana"]).token)
        csrf = {"X-CSRFToken": client.cookies["csrftoken"]}
        page = client.get("/api/conversations", params={"limit": 2}).json()
        assert [c["id"] for c in page["conversations"]] == [company["mine"], company["queue"]]
        rest = client.get("/api/conversations", params={"limit": 2, "before": page["next"]})
        assert [c["id"] for c in rest.json()["conversations"]] == [company["ours"]]
        assert rest.json()["next"] is None
        pending = client.get("/api/conversations", params={"status": "pending", "team": "none"})
        assert pending.json()["conversations"] == []
        assert client.get("/api/conversations", params={"team": "x"}).status_code == 422
        ours = company["ours"]
        assert client.post(f"/api/conversations/{ours}/notes", json={"text": " "},
                           headers=csrf).status_code == 422
        note = client.post(f"/api/conversations/{ours}/notes", json={"text": "ok"},
                           headers=csrf)
        assert (note.status_code, note.json()["author"]) == (201, "Ana Lima")
        assert client.post(f"/api/conversations/{ours}/read", headers=csrf).status_code == 204
        row = next(c for c in client.get("/api/conversations").json()["conversations"]
                   if c["id"] == ours)
        assert row["unread"] == 0
        theirs = company["theirs"]  # another team's: as if it did not exist
        assert client.post(f"/api/conversations/{theirs}/notes", json={"text": "x"},
                           headers=csrf).status_code == 404
        assert client.post(f"/api/conversations/{ours}/take-over",
                           headers=csrf).status_code == 204
        assert client.put("/api/presence", json={"online": True},
                          headers=csrf).json() == {"online": True}
        with sessions() as s:
            first = s.query(Message).filter_by(conversation_id=ours).first()
            assert first is not None
        assert client.get(f"/api/messages/{first.id}/media").status_code == 404  # no file
        created = client.post("/api/canned-responses", json={"shortcut": "x", "text": "y"},
                              headers=csrf)
        assert created.status_code == 403  # an agent reads canned responses, never writes
        token = TestClient(create_app(settings),
                           headers={"Authorization": "Bearer test-admin-token"})
        assert token.post(f"/api/conversations/{ours}/take-over").status_code == 409
        made = token.post("/api/canned-responses", json={"shortcut": "/pix", "text": "CNPJ"})
        assert made.json()["shortcut"] == "pix"
        assert token.post("/api/canned-responses", json={"shortcut": "pix", "text": "z"}
                          ).status_code == 409
        assert [c["shortcut"] for c in client.get("/api/canned-responses").json()] == ["pix"]
    finally:
        use_settings(saved)


def test_a_nul_in_what_an_agent_sends_is_dropped_not_a_500(sessions: sessionmaker[Session],
                                                           company: dict[str, int],
                                                           tmp_path: Path) -> None:
    """PostgreSQL stores no NUL in text: an API caller's "a\x00b" failed the whole send."""
    sending.agent_message(sessions, company["ours"], text="Seu pedido\x00 saiu!",
                          data_dir=tmp_path, max_bytes=1000)
    with sessions() as s:
        sent = s.scalars(select(Message.text).where(Message.conversation_id == company["ours"],
                                                    Message.direction == "out")).all()
    assert list(sent) == ["Seu pedido saiu!"]
