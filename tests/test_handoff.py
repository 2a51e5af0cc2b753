"""Handing a conversation to people (server.services.queues), sessions' lifecycle
(server.services.chat_sessions) and follow-up questions (server.services.followups), at the
service level on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.schema import ChatSession, Conversation, Instance
from server.services import chat_sessions, contacts, handling, people, queues
from server.services.followups import key, standalone
from server.settings import Settings

SETTINGS = Settings()
# A Wednesday, 15:00 in São Paulo (18:00 UTC).
WEDNESDAY_3PM = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)
OFFICE = {"timezone": "America/Sao_Paulo", "hours": {"seg-sex": ["08:00-18:00"]}}


def _conversation(sessions: sessionmaker[Session], inst: Instance, phone: str) -> int:
    contact = contacts.resolve(sessions, phone=phone, lid=None, name="Carla")
    return contacts.conversation_for(sessions, contact, inst.id, phone)


def _team(s: Session, name: str, agents: list[tuple[str, bool]], hours: dict | None = None
          ) -> None:
    team = people.create_team(s, name, hours=hours)
    for i, (who, online) in enumerate(agents):
        user = people.create_user(s, who, f"{name}{i}@example.com")
        people.add_member(s, team.id, user.id)
        if online:
            people.set_online(s, user.id, True)


def test_round_robin_among_online_agents_then_queued_when_none(sessions, inst) -> None:
    with sessions.begin() as s:
        _team(s, "vendas", [("Ana", True), ("Bruno", True), ("Caio", False)])
        _team(s, "vazio", [("Dora", False)])
    got = []
    for i in range(4):
        conv_id = _conversation(sessions, inst, f"551199990000{i}")
        with sessions.begin() as s:
            conv = s.get_one(Conversation, conv_id)
            handed = queues.hand_off(s, SETTINGS, conv, team="Vendas", now=WEDNESDAY_3PM)
            got.append((handed.agent, conv.status, handed.notice))
    assert [a for a, _, _ in got] == ["Ana", "Bruno", "Ana", "Bruno"]  # Caio is offline
    assert {st for _, st, _ in got} == {"assigned"}
    assert got[0][2] == SETTINGS.handoff_message.format(team="vendas", agent="Ana")
    conv_id = _conversation(sessions, inst, "5511999900009")
    with sessions.begin() as s:
        conv = s.get_one(Conversation, conv_id)
        handed = queues.hand_off(s, SETTINGS, conv, team="vazio", now=WEDNESDAY_3PM)
        assert handed.agent is None and conv.status == "queued" and conv.mode == "human"
        assert handed.notice and "vazio" in handed.notice


def test_outside_hours_the_closed_message_once_per_window(sessions, inst) -> None:
    with sessions.begin() as s:
        _team(s, "suporte", [("Eva", True)], hours=OFFICE)
    conv_id = _conversation(sessions, inst, "5511999900010")
    saturday = WEDNESDAY_3PM + timedelta(days=3)
    notices = []
    for later in (timedelta(0), timedelta(hours=1), timedelta(hours=13)):
        with sessions.begin() as s:
            conv = s.get_one(Conversation, conv_id)
            handed = queues.hand_off(s, SETTINGS, conv, team="suporte", now=saturday + later)
            assert handed.outside_hours and handed.agent is None and conv.status == "queued"
            notices.append(handed.notice)
    assert notices[1] is None  # within the team's 12-hour window
    assert "suporte" in notices[0]
    assert notices[0].endswith("responde assim que abrir, segunda às 08:00.")  # Saturday 15:00
    assert notices[2].endswith("responde assim que abrir, amanhã às 08:00.")  # Sunday 04:00
    with sessions.begin() as s:  # open hours: the agent takes it
        conv = s.get_one(Conversation, conv_id)
        assert queues.hand_off(s, SETTINGS, conv, team="suporte",
                               now=WEDNESDAY_3PM).agent == "Eva"


def test_no_team_named_goes_to_the_only_team_or_to_anyone(sessions, inst) -> None:
    conv_id = _conversation(sessions, inst, "5511999900011")
    with sessions.begin() as s:
        conv = s.get_one(Conversation, conv_id)
        handed = queues.hand_off(s, SETTINGS, conv, team=None, now=WEDNESDAY_3PM)
        assert handed.team is None and conv.team_id is None and conv.status == "queued"
        _team(s, "geral", [("Gil", True)])
    with sessions.begin() as s:
        conv = s.get_one(Conversation, conv_id)
        assert queues.hand_off(s, SETTINGS, conv, team="sumiu", now=WEDNESDAY_3PM).team == \
            "geral"


def test_a_session_opens_once_closes_idle_and_the_next_starts_over(sessions, inst) -> None:
    conv_id = _conversation(sessions, inst, "5511999900012")
    now = WEDNESDAY_3PM
    with sessions.begin() as s:
        conv, instance = s.get_one(Conversation, conv_id), s.get_one(Instance, inst.id)
        first, new = chat_sessions.current(s, conv, instance, SETTINGS, now)
        assert new and conv.mode == "ai"
        first.state, first.answers = {"vars": {"x": "1"}}, {"q": 1}
        again, new = chat_sessions.current(s, conv, instance, SETTINGS, now + timedelta(hours=1))
        assert not new and again.id == first.id
    idle = now + timedelta(hours=1, minutes=SETTINGS.session_idle_minutes + 1)
    with sessions.begin() as s:
        assert chat_sessions.close_idle(s, SETTINGS, idle) == 1
    with sessions() as s:
        closed = s.get_one(ChatSession, first.id)
        assert closed.status == "closed" and closed.closed_by == "idle"
        assert closed.state is None and closed.answers is None  # retention: delete
        assert s.get_one(Conversation, conv_id).status == "closed"


def test_a_person_s_conversation_is_not_closed_by_the_clock(sessions, inst) -> None:
    conv_id = _conversation(sessions, inst, "5511999900013")
    with sessions.begin() as s:
        conv, instance = s.get_one(Conversation, conv_id), s.get_one(Instance, inst.id)
        chat_sessions.current(s, conv, instance, SETTINGS, WEDNESDAY_3PM)
        queues.hand_off(s, SETTINGS, conv, team=None, now=WEDNESDAY_3PM)
    with sessions.begin() as s:
        assert chat_sessions.close_idle(s, SETTINGS, WEDNESDAY_3PM + timedelta(days=7)) == 0
        handling.close(s, SETTINGS, conv_id)  # an agent resolves it
    with sessions() as s:
        assert s.scalars(select(ChatSession).where(
            ChatSession.conversation_id == conv_id)).one().closed_by == "agent"
        conv = s.get_one(Conversation, conv_id)
        assert conv.status == "closed" and conv.mode == "ai"


@pytest.mark.parametrize(("asked", "history", "means"), [
    ("e pro sul?", ["qual o prazo de entrega pro norte?"], "qual o prazo de entrega pro sul?"),
    ("e no sábado?", ["vcs abrem no domingo?"], "vcs abrem no sábado?"),
    ("e o frete?", ["quanto custa a entrega expressa"], "quanto custa o frete?"),
    ("e com cartão?", ["posso pagar a entrega"], "posso pagar a entrega com cartão?"),
    ("e pro sul?", [], "e pro sul?"),  # nothing to follow
    ("qual o prazo pro sul?", ["qual o prazo pro norte?"], "qual o prazo pro sul?"),
    ("e vcs tem alguma loja fisica aberta aos domingos em sp?", ["qual o prazo?"],
     "e vcs tem alguma loja fisica aberta aos domingos em sp?"),  # a question of its own
])
def test_an_elliptic_follow_up_becomes_a_standalone_question(asked, history, means) -> None:
    turns = [{"role": "user", "content": h} for h in history]
    assert standalone(asked, turns) == means


def test_the_memory_key_ignores_case_accents_and_small_words() -> None:
    assert key("Qual o PRAZO de troca?") == key("qual prazo troca")
    assert key("oi") == ""
