"""Scheduled messages on SQLite and PostgreSQL: what a person may schedule, an occurrence going
out once whoever reaches it, a repeat on the company's clock, a late one missed rather than
sent hours late, cancelling, who sees what; and one sent by the running server."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server.engine import replies
from server.schema import (
    Contact,
    Conversation,
    Instance,
    Message,
    Outbox,
    ScheduledMessage,
    ScheduledSend,
    Team,
    TeamMember,
    User,
)
from server.services import schedules
from server.services.access import Principal, of_user
from server.services.contact_data import Invalid
from tests.conftest import Server
from tests.test_message_path import ADMIN, _rows, _wait

SP = ZoneInfo("America/Sao_Paulo")
NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)  # 9:00 in São Paulo


@pytest.fixture
def shop(sessions: sessionmaker[Session], inst: Instance) -> dict[str, int]:
    """Two teams with an agent each, and a conversation in each team."""
    with sessions.begin() as s:
        ids: dict[str, int] = {}
        for n, name in enumerate(("vendas", "trocas")):
            team = Team(name=name)
            agent = User(name=f"Agente {name}", email=f"{name}@loja.com", level="agent",
                         active=True)
            s.add_all([team, agent])
            s.flush()
            s.add(TeamMember(team_id=team.id, user_id=agent.id))
            contact = Contact(name=f"Cliente {n}", phone=f"551190000000{n}")
            s.add(contact)
            s.flush()
            conv = Conversation(contact_id=contact.id, instance_id=inst.id,
                                address=contact.phone, team_id=team.id, status="queued",
                                mode="human")
            s.add(conv)
            s.flush()
            ids[name], ids[f"agent_{name}"] = conv.id, agent.id
    return ids


def _who(sessions: sessionmaker[Session], user_id: int) -> Principal:
    with sessions() as s:
        return of_user(s, s.get_one(User, user_id))


def _create(sessions: sessionmaker[Session], who: Principal, conv: int, text: str = "Lembrete",
            **plan: object) -> int:
    p = schedules.plan(text, plan.get("send_at"), plan.get("repeat"),  # type: ignore[arg-type]
                       str(plan.get("timezone", schedules.ZONE)),
                       plan.get("now", NOW))  # type: ignore[arg-type]
    with sessions.begin() as s:
        return schedules.create(s, who, conv, p).id


@pytest.mark.parametrize("text, send_at, repeat, zone, field", [
    ("  ", NOW + timedelta(hours=1), None, schedules.ZONE, "text"),
    ("x" * 4097, NOW + timedelta(hours=1), None, schedules.ZONE, "text"),
    ("oi", NOW + timedelta(hours=1), None, "America/Atlantida", "timezone"),
    ("oi", None, "0 9 * *", schedules.ZONE, "repeat"),
    ("oi", None, "61 9 * * *", schedules.ZONE, "repeat"),
    ("oi", None, "*/5 * * * *", schedules.ZONE, "repeat"),  # every 5 minutes: spam
    ("oi", None, "0,30 9 * * *", schedules.ZONE, "repeat"),  # twice within an hour
    ("oi", None, None, schedules.ZONE, "send_at"),
    ("oi", NOW - timedelta(hours=1), None, schedules.ZONE, "send_at"),
    ("oi", NOW + timedelta(days=400), None, schedules.ZONE, "send_at"),
    ("a\x00b", NOW + timedelta(hours=1), None, schedules.ZONE, "text"),  # PostgreSQL: a 500
    ("oi", datetime(9999, 12, 31, 23, 59), None, schedules.ZONE, "send_at"),  # past year 9999
    ("oi", datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), None, "UTC", "send_at"),
    ("oi", None, "R * * * *", schedules.ZONE, "repeat"),  # a new random minute at each read
    ("oi", None, "0 R * * *", schedules.ZONE, "repeat"),
    ("oi", None, "0 9 31 2 *", schedules.ZONE, "repeat"),  # February 31st never comes
    ("oi", None, "0 9 29 2 *", schedules.ZONE, "repeat"),  # once in four years
    ("oi", NOW + timedelta(hours=1), None, "localtime", "timezone"),  # the server's own clock
    ("oi", datetime(2026, 12, 9, 8, 59), "0 9 * * *", schedules.ZONE, "send_at"),  # 1 min apart
    ("oi", datetime(9999, 12, 31, 20, 0), "0 9 * * *", schedules.ZONE, "send_at"),  # no 10000
])
def test_what_cannot_be_sent_is_refused_naming_its_field(
        text: str, send_at: datetime | None, repeat: str | None, zone: str, field: str) -> None:
    with pytest.raises(Invalid) as refused:
        schedules.plan(text, send_at, repeat, zone, NOW)
    assert refused.value.field == field


def test_times_are_read_on_the_company_clock() -> None:
    naive = schedules.plan("oi", datetime(2026, 12, 10, 9, 0), None, schedules.ZONE, NOW)
    assert naive.first == datetime(2026, 12, 10, 12, 0, tzinfo=UTC)  # 9:00 BRT is 12:00 UTC
    weekly = schedules.plan("oi", None, " 0  9 * * 1 ", schedules.ZONE, NOW)  # Mondays at 9
    assert weekly.first == datetime(2026, 12, 14, 12, 0, tzinfo=UTC)
    assert weekly.repeat == "0 9 * * 1"


def test_a_time_the_clock_shows_twice_goes_out_once() -> None:
    """When daylight saving ends (New York, 7 November 2027) 1:30 comes twice: a daily repeat
    at 1:30 goes out once that day, and is not refused as "more than once an hour"."""
    ny = ZoneInfo("America/New_York")
    for made in (datetime(2027, 10, 1, 12, tzinfo=UTC), datetime(2027, 11, 6, 12, tzinfo=UTC)):
        p = schedules.plan("oi", None, "30 1 * * *", "America/New_York", made)
        at, days = p.first, []
        while at < datetime(2027, 11, 9, tzinfo=UTC):
            if at >= datetime(2027, 11, 6, 12, tzinfo=UTC):
                days.append(at.astimezone(ny).date().day)
            at = schedules._after("30 1 * * *", ny, at)
        assert days == [7, 8], days  # not 7, 7, 8
    hourly = schedules.plan("oi", None, "0 * * * *", "America/New_York",
                            datetime(2027, 11, 6, 12, tzinfo=UTC))
    assert hourly.repeat == "0 * * * *"


def test_a_cancel_racing_a_send_either_stops_it_or_is_refused(
        sessions: sessionmaker[Session], shop: dict[str, int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancel arriving while the send writes its message: on SQLite a read takes no lock,
    and the cancel answered "cancelled" for a message that went out."""
    who = _who(sessions, shop["agent_vendas"])
    sid = _create(sessions, who, shop["vendas"], send_at=NOW + timedelta(minutes=5))
    real, answer = replies.write, {}

    def cancel() -> None:
        try:
            with sessions.begin() as s:
                answer["cancel"] = schedules.cancel(s, who, sid).status
        except schedules.Refused as exc:
            answer["cancel"] = str(exc)

    racer = threading.Thread(target=cancel)

    def write(s: Session, **kw: object) -> object:  # the cancel comes as the message is written
        racer.start()
        racer.join(2)  # where the send holds the row, the cancel waits for it
        return real(s, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(replies, "write", write)
    box = schedules.send(sessions, sid, NOW + timedelta(minutes=5, seconds=1))
    racer.join(30)
    with sessions() as s:
        status = s.get_one(ScheduledMessage, sid).status
        out = s.scalar(select(func.count()).select_from(Message).where(
            Message.direction == "out"))
    assert (box is not None, status, out) == (True, "done", 1)
    assert answer["cancel"] == "this scheduled message is done already"


def test_an_occurrence_goes_out_once_whoever_reaches_it(sessions: sessionmaker[Session],
                                                       shop: dict[str, int]) -> None:
    who = _who(sessions, shop["agent_vendas"])
    sid = _create(sessions, who, shop["vendas"], "Seu pedido saiu para entrega!",
                  send_at=NOW + timedelta(minutes=5))
    assert schedules.send(sessions, sid, NOW) is None  # not due yet
    at = NOW + timedelta(minutes=5, seconds=1)
    boxes: list[int | None] = []
    workers = [threading.Thread(target=lambda: boxes.append(schedules.send(sessions, sid, at)))
               for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len([b for b in boxes if b is not None]) == 1, boxes
    assert schedules.send(sessions, sid, at + timedelta(seconds=30)) is None
    with sessions() as s:
        sent = list(s.scalars(select(Message).where(Message.conversation_id == shop["vendas"],
                                                    Message.direction == "out")))
        assert [m.text for m in sent] == ["Seu pedido saiu para entrega!"]
        assert sent[0].author == "system" and sent[0].user_id == shop["agent_vendas"]
        assert s.scalar(select(func.count()).select_from(Outbox)) == 1
        row = schedules.listing(s, who)[0]
        assert (row.status, row.sent, row.missed) == ("done", 1, 0)


def test_a_repeat_goes_on_and_one_found_late_is_missed_not_sent(
        sessions: sessionmaker[Session], shop: dict[str, int]) -> None:
    who = _who(sessions, shop["agent_vendas"])
    sid = _create(sessions, who, shop["vendas"], "Bom dia! Promoção do dia no site.",
                  repeat="0 9 * * *")
    first = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)  # tomorrow, 9:00 in São Paulo
    assert schedules.send(sessions, sid, first + timedelta(seconds=2)) is not None
    with sessions() as s:
        row = schedules.listing(s, who)[0]
        assert row.next_at == first + timedelta(days=1) and row.status == "scheduled"
    # The server was down for three days; it comes back at 9:10 on the fourth.
    back = first + timedelta(days=4, minutes=10)
    assert schedules.send(sessions, sid, back) is None  # three mornings passed unsent: missed
    with sessions() as s:
        row = schedules.listing(s, who)[0]
        assert (row.sent, row.missed) == (1, 3)
        assert row.next_at == first + timedelta(days=4)  # this morning's, 10 minutes late
    assert schedules.send(sessions, sid, back) is not None  # within the grace: sent
    assert schedules.send(sessions, sid, back) is None
    with sessions() as s:
        row = schedules.listing(s, who)[0]
        assert (row.sent, row.missed, row.next_at) == (2, 3, first + timedelta(days=5))
        assert s.scalar(select(func.count()).select_from(ScheduledSend)) == 2


def test_one_found_late_is_missed_and_the_person_sees_it(sessions: sessionmaker[Session],
                                                        shop: dict[str, int]) -> None:
    who = _who(sessions, shop["agent_vendas"])
    sid = _create(sessions, who, shop["vendas"], send_at=NOW + timedelta(hours=1))
    assert schedules.send(sessions, sid, NOW + timedelta(hours=3)) is None
    with sessions() as s:
        row = schedules.listing(s, who)[0]
        assert (row.status, row.sent, row.missed) == ("missed", 0, 1)
        assert s.scalar(select(func.count()).select_from(Message).where(
            Message.direction == "out")) == 0


def test_cancelling_stops_what_is_left_and_other_teams_see_nothing(
        sessions: sessionmaker[Session], shop: dict[str, int]) -> None:
    vendas, trocas = _who(sessions, shop["agent_vendas"]), _who(sessions, shop["agent_trocas"])
    sid = _create(sessions, vendas, shop["vendas"], repeat="0 9 * * 1")
    with sessions() as s:
        assert schedules.listing(s, trocas) == []
        assert [r.id for r in schedules.listing(s, vendas, status="scheduled")] == [sid]
    with pytest.raises(LookupError), sessions.begin() as s:
        schedules.cancel(s, trocas, sid)
    with sessions.begin() as s:
        assert schedules.cancel(s, vendas, sid).status == "cancelled"
    with pytest.raises(schedules.Refused), sessions.begin() as s:
        schedules.cancel(s, vendas, sid)
    assert schedules.send(sessions, sid, NOW + timedelta(days=30)) is None
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Message).where(
            Message.direction == "out")) == 0


def test_the_server_sends_a_scheduled_message_at_its_time(server: Server) -> None:
    phone = "5511955550041"
    said = httpx.post(f"{server.url}/simulator/api/demo/messages", timeout=30,
                      json={"phone": phone, "name": "Rita", "text": "oi"})
    assert said.status_code == 200
    (conv_id,), = _rows(server, "SELECT id FROM conversations WHERE address=?", phone)
    url = f"{server.url}/api/conversations/{conv_id}/scheduled"
    bad = httpx.post(url, headers=ADMIN, json={"text": "oi", "repeat": "* * * * *"})
    assert bad.status_code == 422 and "once an hour" in bad.text
    when = datetime.now(UTC) + timedelta(seconds=3)
    made = httpx.post(url, headers=ADMIN, json={"text": "Sua consulta é amanhã às 10h.",
                                                "send_at": when.isoformat()})
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "scheduled"

    def heard() -> list[str]:
        chat = httpx.get(f"{server.url}/simulator/api/demo/messages",
                         params={"phone": phone}).json()
        return [m["text"] for m in chat if m["direction"] == "out"]

    _wait("the scheduled message on the phone",
          lambda: "Sua consulta é amanhã às 10h." in heard(), 30)
    assert time.time() >= when.timestamp()  # not before its time
    listed = httpx.get(f"{server.url}/api/scheduled", headers=ADMIN,
                       params={"conversation_id": conv_id}).json()
    assert [(r["status"], r["sent"]) for r in listed] == [("done", 1)]
    assert heard().count("Sua consulta é amanhã às 10h.") == 1
    gone = httpx.post(f"{server.url}/api/scheduled/{listed[0]['id']}/cancel", headers=ADMIN)
    assert gone.status_code == 409


def test_a_removed_number_sends_nothing_more(sessions: sessionmaker[Session],
                                             shop: dict[str, int]) -> None:
    who = _who(sessions, shop["agent_vendas"])
    sid = _create(sessions, who, shop["vendas"], send_at=NOW + timedelta(minutes=5))
    with sessions.begin() as s:
        conv = s.get_one(Conversation, shop["vendas"])
        s.get_one(Instance, conv.instance_id).deleted_at = NOW
    assert schedules.send(sessions, sid, NOW + timedelta(minutes=6)) is None
    with sessions() as s:
        assert schedules.listing(s, who)[0].status == "cancelled"
        assert s.scalar(select(func.count()).select_from(Message).where(
            Message.direction == "out")) == 0

