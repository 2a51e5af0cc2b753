"""Merging duplicate contacts, on each database: every identity and every message is kept, tags
and fields are united (the kept contact's value wins, the other's is in the record), two
conversations on one number become one, and the customer writing again from the merged
contact's address lands on the kept one."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.schema import (
    ChatSession,
    Contact,
    ContactIdentity,
    ContactMerge,
    Conversation,
    ConversationRead,
    Message,
    Team,
    User,
)
from server.services import contact_data, contacts, instances, merge
from server.services.access import Principal
from server.services.contact_checks import Refused
from tests.test_contact_search import api  # noqa: F401,F811  (the API fixture)

MANAGER = Principal(level="manager", user_id=None, name="Gerente")
NOW = datetime.now(UTC)


def _contact(s: Session, name: str, identities: list[tuple[str, str]],
             chats: list[tuple[int, str, int]]) -> tuple[int, dict[int, int]]:
    """A contact with these identities and, per (instance, status, messages), a conversation:
    its id and {conversation id: instance}."""
    contact = Contact(name=name, phone=next((v for k, v in identities if k == "phone"), None))
    s.add(contact)
    s.flush()
    s.add_all(ContactIdentity(contact_id=contact.id, kind=k, value=v) for k, v in identities)
    convs = {}
    for inst, status, n in chats:
        conv = Conversation(contact_id=contact.id, instance_id=inst, address="x", status=status,
                            last_inbound_at=NOW - timedelta(days=n))
        s.add(conv)
        s.flush()
        s.add_all(Message(instance_id=inst, conversation_id=conv.id, direction="in",
                          author="customer", text=f"{name} {i}", status="answered")
                  for i in range(n))
        convs[conv.id] = inst
    s.flush()
    return contact.id, convs


def _pair(sessions: sessionmaker[Session]) -> dict[str, Any]:
    loja = instances.ensure_simulator(sessions, "loja", "http://127.0.0.1:9").id
    outra = instances.ensure_simulator(sessions, "outra", "http://127.0.0.1:9").id
    with sessions.begin() as s:
        contact_data.create_field(s, "plano", "Plano", "choice", ["Básico", "Ouro"])
        contact_data.create_field(s, "renda", "Renda", "number")
        team = Team(name="trocas")
        s.add(team)
        s.flush()
        a, a_convs = _contact(s, "Ana", [("phone", "5511987650001")], [(loja, "closed", 3)])
        b, b_convs = _contact(s, "Ana S.", [("lid", "123@lid"), ("phone", "5511976540009")],
                              [(loja, "queued", 2), (outra, "open", 4)])
        b_loja = next(c for c, i in b_convs.items() if i == loja)
        s.get(Conversation, b_loja).team_id = team.id  # type: ignore[union-attr]
        s.add(ChatSession(conversation_id=b_loja, status="open", flow_key="menu"))
        s.add(ChatSession(conversation_id=next(iter(a_convs)), status="open", flow_key="menu"))
        reader = User(name="Gi", email="gi@loja.com", level="agent", active=True, online=False)
        s.add(reader)
        s.flush()
        s.add_all(ConversationRead(user_id=reader.id, conversation_id=c, last_read_message_id=n)
                  for n, c in enumerate([next(iter(a_convs)), *b_convs]))
        contact_data.set_tag(s, a, "vip")
        contact_data.set_tag(s, b, "vip")
        contact_data.set_tag(s, b, "sp")
        contact_data.set_fields(s, a, {"plano": "Ouro"})
        contact_data.set_fields(s, b, {"plano": "Básico", "renda": "1.500"})
        messages = set(s.scalars(select(Message.id)))
    return {"a": a, "b": b, "loja": loja, "outra": outra, "team": team.id, "messages": messages,
            "a_loja": next(iter(a_convs)), "b_loja": b_loja}


def test_every_identity_and_message_is_kept(sessions: sessionmaker[Session]) -> None:
    w = _pair(sessions)
    with sessions.begin() as s:
        record = merge.merge(s, MANAGER, w["a"], w["b"])
        record_id = record.id
    with sessions() as s:
        assert s.get(Contact, w["b"]) is None
        assert set(s.execute(select(ContactIdentity.kind, ContactIdentity.value).where(
            ContactIdentity.contact_id == w["a"])).tuples()) == {
            ("phone", "5511987650001"), ("lid", "123@lid"), ("phone", "5511976540009")}
        convs = {c.instance_id: c for c in s.scalars(select(Conversation))}
        assert len(convs) == 2 and {c.contact_id for c in convs.values()} == {w["a"]}
        # One conversation on loja: A's, with both contacts' messages, and B's queue state.
        kept = convs[w["loja"]]
        assert kept.id == w["a_loja"] and kept.status == "queued" and kept.team_id == w["team"]
        assert kept.last_inbound_at is not None
        assert set(s.scalars(select(Message.id))) == w["messages"]
        texts = list(s.scalars(select(Message.text).where(Message.conversation_id == kept.id)))
        assert sorted(texts) == ["Ana 0", "Ana 1", "Ana 2", "Ana S. 0", "Ana S. 1"]
        assert len(list(s.scalars(select(Message.id).where(
            Message.conversation_id == convs[w["outra"]].id)))) == 4
        # One open chat session per conversation: B's was closed by the merge, and moved.
        sessions_of = s.execute(select(ChatSession.status, ChatSession.closed_by).where(
            ChatSession.conversation_id == kept.id)).tuples().all()
        assert sorted(sessions_of, key=str) == sorted([("open", None), ("closed", "merge")],
                                                      key=str)
        # A person's read marker: the kept conversation's own stays, the other moved along.
        assert set(s.execute(select(ConversationRead.conversation_id,
                                    ConversationRead.last_read_message_id)).tuples()) == {
            (kept.id, 0), (convs[w["outra"]].id, 2)}
        assert contact_data.tags_of(s, w["a"]) == {"vip", "sp"}
        assert contact_data.fields_of(s, w["a"]) == {"plano": "Ouro", "renda": "1500"}
        record = s.get(ContactMerge, record_id)
        assert record is not None and record.merged_id == w["b"]
        assert record.merged_name == "Ana S." and record.by_name == "Gerente"
        assert record.detail["fields_not_kept"] == {"plano": "Básico"}
        assert record.detail["tags"] == ["sp"]
        assert ["lid", "123@lid"] in record.detail["identities"]
        assert {c["joined"] for c in record.detail["conversations"]} == {w["a_loja"], None}
    # The customer writing again under the merged contact's @lid is the kept contact.
    assert contacts.resolve(sessions, phone=None, lid="123@lid", name=None) == w["a"]


def test_a_contact_is_not_merged_with_itself_or_with_nothing(
        sessions: sessionmaker[Session]) -> None:
    w = _pair(sessions)
    with sessions.begin() as s, pytest.raises(Refused):
        merge.merge(s, MANAGER, w["a"], w["a"])
    with sessions.begin() as s, pytest.raises(LookupError):
        merge.merge(s, MANAGER, w["a"], 999_999)
    with sessions() as s:
        assert s.get(Contact, w["b"]) is not None


def test_two_merges_of_one_contact_at_once_make_one(sessions: sessionmaker[Session]) -> None:
    """A double click on "merge": the second waits for the first, then finds B gone, and the
    merge is recorded once."""
    w = _pair(sessions)
    first = sessions()
    first.begin()
    merge.merge(first, MANAGER, w["a"], w["b"])
    outcome: list[str] = []

    def second() -> None:
        try:
            with sessions.begin() as s:
                merge.merge(s, MANAGER, w["a"], w["b"])
            outcome.append("merged")
        except LookupError:
            outcome.append("not found")

    late = threading.Thread(target=second)
    late.start()
    time.sleep(0.5)  # the second is past its first look at the contacts, waiting on the first
    first.commit()
    first.close()
    late.join(30)
    assert outcome == ["not found"]
    with sessions() as s:
        assert len(s.scalars(select(ContactMerge).where(
            ContactMerge.merged_id == w["b"])).all()) == 1


def test_duplicates_are_suggested_by_name_and_phone(sessions: sessionmaker[Session]) -> None:
    w = _pair(sessions)
    with sessions.begin() as s:
        same_tail, _ = _contact(s, "Outra pessoa", [("phone", "551176540009")], [])
        same_name, _ = _contact(s, "ana s.", [("phone", "5599999990000")], [])
        _contact(s, "Zé", [("phone", "5511900000000")], [])
    admin = Principal(level="admin")
    with sessions() as s:
        found = {c.id: str(c.why) for c in merge.duplicates(s, admin, w["b"])}
    assert found == {same_tail: "o telefone termina igual", same_name: "mesmo nome"}


def test_the_api_merges_and_answers_what_moved(sessions: sessionmaker[Session],
                                               api: TestClient) -> None:  # noqa: F811
    w = _pair(sessions)
    got = api.post(f"/api/contacts/{w['a']}/merge", json={"other": w["b"]})
    assert got.status_code == 200, got.text
    assert got.json()["merged"] == w["b"] and got.json()["detail"]["tags"] == ["sp"]
    assert api.get(f"/api/contacts/{w['b']}").status_code == 404
    card = api.get(f"/api/contacts/{w['a']}").json()
    assert len(card["history"]) == len(w["messages"]) and len(card["identities"]) == 3
    assert api.post(f"/api/contacts/{w['a']}/merge", json={"other": w["a"]}).status_code == 422
    assert api.post(f"/api/contacts/{w['a']}/merge", json={"other": w["b"]}).status_code == 404
