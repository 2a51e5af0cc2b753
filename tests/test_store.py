"""Storage rules on SQLite and PostgreSQL alike: once-only messages, one contact, one reply."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from gateway_bridge import InboundMessage
from server.engine import turns
from server.runtime import Runtime
from server.schema import (
    ChatSession,
    Contact,
    ContactIdentity,
    Conversation,
    Instance,
    Message,
    MessageEvent,
    Outbox,
)
from server.services import inbound, journey, recovery
from server.services.contacts import normalize_phone
from server.settings import Settings

STALE = inbound.Rules(stale_after=timedelta(minutes=10), data_dir=Path("/nonexistent"),
                      media_max_bytes=1)  # no test here carries a file


def _msg(pid: str, phone: str = "5511987650000", text: str = "oi", **kw) -> InboundMessage:
    return InboundMessage(provider_message_id=pid, sender=phone, phone=phone, lid=kw.get("lid"),
                          sender_name="Cliente", text=text,
                          timestamp=kw.get("ts", datetime.now(UTC)))


def _count(sessions, model, *where) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_brazilian_ninth_digit_is_one_contact(sessions, inst) -> None:
    assert normalize_phone("551187654321") == "5511987654321"
    assert normalize_phone("551133334444") == "551133334444"  # landline keeps 8 digits
    inbound.store_inbound(sessions, inst, _msg("a1", "551187654321"), STALE)
    inbound.store_inbound(sessions, inst, _msg("a2", "5511987654321"), STALE)
    assert _count(sessions, Contact) == 1
    with sessions() as s:  # one conversation, answered where the customer last wrote from
        assert [c.address for c in s.scalars(select(Conversation))] == ["5511987654321"]


def test_lid_identity_joins_the_phone_contact(sessions, inst) -> None:
    inbound.store_inbound(sessions, inst, _msg("l1", "5511987650001"), STALE)
    both = _msg("l2", "5511987650001", lid="123456789@lid")
    inbound.store_inbound(sessions, inst, both, STALE)
    lid_only = InboundMessage(provider_message_id="l3", sender="123456789@lid", phone=None,
                              lid="123456789@lid", sender_name=None, text="oi",
                              timestamp=datetime.now(UTC))
    inbound.store_inbound(sessions, inst, lid_only, STALE)
    assert _count(sessions, Contact) == 1
    assert _count(sessions, ContactIdentity) == 2


def test_concurrent_duplicate_webhooks_store_one_message(sessions, inst) -> None:
    barrier = threading.Barrier(6)

    def deliver(_: int):
        barrier.wait()
        return inbound.store_inbound(sessions, inst, _msg("same-id"), STALE)[1]

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(deliver, range(6)))
    assert results.count(True) == 1 and results.count(None) == 5
    assert _count(sessions, Message, Message.provider_message_id == "same-id") == 1
    assert _count(sessions, MessageEvent, MessageEvent.event == "duplicate") == 5


@pytest.fixture
def rt(tmp_path, llm, demo_kb):
    settings = Settings(data_dir=tmp_path, llm_max_tokens=24)
    local = settings.local_model().model_copy(update={"path": llm.path})
    with httpx.Client() as http:
        yield Runtime(settings, {"local": (local, llm)}, demo_kb, http)


def test_turn_answers_pending_once_and_keeps_grounding(sessions, inst, rt) -> None:
    for i, text in enumerate(["oi", "qual o prazo para trocar um produto?"]):
        conv_id, _ = inbound.store_inbound(sessions, inst, _msg(f"t{i}", text=text),
                                           STALE)
    with sessions.begin() as s:
        s.get_one(Instance, inst.id).kb_collection = "demo"
    box = turns.run(rt, sessions, conv_id)
    assert box is not None
    assert turns.run(rt, sessions, conv_id) is None  # nothing pending: no second reply
    with sessions() as s:
        reply = s.scalars(select(Message).where(Message.direction == "out")).one()
        assert reply.grounding and reply.prompt_tokens and reply.status == "queued"
        assert s.scalar(select(Outbox.message_id).where(Outbox.id == box)) == reply.id
        assert set(s.scalars(select(Message.status).where(Message.direction == "in"))) == {
            "answered"}
    cited = rt.kb.passages("demo", reply.grounding)
    assert cited[0].doc == "trocas-e-devolucoes.md"


def test_a_question_no_passage_covers_hands_off_without_the_model(sessions, inst, rt) -> None:
    # The fused score alone would let it through; the passages do not hold what it names.
    rt.settings = Settings(data_dir=rt.settings.data_dir, retrieval_min_score=0.0,
                           retrieval_min_coverage=0.75)
    question = "qual o prazo para trocar uma geladeira usada comprada na feira?"
    assert rt.kb.search("demo", question)[0].score > 0
    with sessions.begin() as s:
        s.get_one(Instance, inst.id).kb_collection = "demo"
    conv_id, _ = inbound.store_inbound(sessions, inst, _msg("c1", text=question),
                                       STALE)
    turns.run(rt, sessions, conv_id)
    with sessions() as s:
        reply = s.scalars(select(Message).where(Message.direction == "out")).one()
        assert reply.author == "system" and reply.prompt_tokens is None  # no model was asked
        assert s.get_one(Conversation, conv_id).mode == "human"


def test_no_good_passage_hands_off_without_the_model(sessions, inst, rt) -> None:
    rt.settings = Settings(data_dir=rt.settings.data_dir, retrieval_min_score=99)
    with sessions.begin() as s:
        s.get_one(Instance, inst.id).kb_collection = "demo"
    conv_id, _ = inbound.store_inbound(sessions, inst, _msg("h1", text="vcs vendem notebook?"),
                                       STALE)
    turns.run(rt, sessions, conv_id)
    inbound.store_inbound(sessions, inst, _msg("h2", text="alô?"), STALE)
    assert turns.run(rt, sessions, conv_id) is None  # a human has it now
    with sessions() as s:
        assert s.get_one(Conversation, conv_id).mode == "human"
        reply = s.scalars(select(Message).where(Message.direction == "out")).one()
        assert reply.author == "system" and reply.prompt_tokens is None
        statuses = s.scalars(select(Message.status).where(Message.direction == "in")
                             .order_by(Message.id))
        assert list(statuses) == ["handed_off", "handed_off"]


def test_a_bot_answering_every_reply_is_handed_to_a_human_unanswered(sessions, inst,
                                                                       rt) -> None:
    """An auto-responder on the other side would talk with ours forever."""
    rt.settings = Settings(data_dir=rt.settings.data_dir, llm_max_tokens=24, loop_replies=2)
    with sessions.begin() as s:
        s.get_one(Instance, inst.id).kb_collection = "demo"
    boxes = []
    for i, text in enumerate(["qual o prazo para trocar um produto?",
                              "qto custa a entrega expressa", "em qnto tempo cai o reembolso?"]):
        conv_id, _ = inbound.store_inbound(sessions, inst, _msg(f"b{i}", text=text),
                                           STALE)
        boxes.append(turns.run(rt, sessions, conv_id))
    assert boxes[0] and boxes[1] and boxes[2] is None
    with sessions() as s:
        assert _count(sessions, Message, Message.direction == "out") == 2
        assert s.get_one(Conversation, conv_id).mode == "human"
        last = s.scalars(select(Message).where(Message.provider_message_id == "b2")).one()
        assert last.status == "handed_off"
        events = [e.event for e in journey.of(s, last.id)]
        assert events[-1] == "loop_guard"
    # Another customer, writing at a human pace (here: slower than a 1-second window), is
    # answered every time.
    rt.settings = Settings(data_dir=rt.settings.data_dir, llm_max_tokens=24, loop_replies=2,
                           loop_window_seconds=1)
    for i, text in enumerate(["qto custa a entrega expressa", "qual o prazo para trocar um "
                              "produto?", "em qnto tempo cai o reembolso?"]):
        time.sleep(1.1)
        other, _ = inbound.store_inbound(sessions, inst, _msg(f"h{i}", "5511912340000", text),
                                         STALE)
        assert turns.run(rt, sessions, other) is not None


def test_a_bot_stopped_while_the_customer_waits_in_a_queue_stays_stopped(sessions, inst,
                                                                         rt) -> None:
    """In a team's queue the assistant still answers what its documents answer. Once the loop
    guard has stopped an auto-responder there, it answers nothing more while the queue waits:
    it used to start again as soon as the guard's window had passed, ten replies at a time."""
    rt.settings = Settings(data_dir=rt.settings.data_dir, llm_max_tokens=24, loop_replies=2)
    with sessions.begin() as s:
        s.get_one(Instance, inst.id).kb_collection = "demo"
    conv_id, _ = inbound.store_inbound(sessions, inst, _msg("q0", text="oi"), STALE)
    with sessions.begin() as s:  # handed to a team; no agent has answered yet
        conv = s.get_one(Conversation, conv_id)
        conv.mode, conv.status = "human", "queued"
    turns.run(rt, sessions, conv_id)
    questions = ["qto custa a entrega expressa", "em qnto tempo cai o reembolso?",
                 "qual o prazo para trocar um produto?", "vcs parcelam no cartao?"]
    boxes = []
    for i, text in enumerate(questions):
        if i == 3:  # the guard's window has passed (a window of 1 s, then 1.1 s of quiet)
            rt.settings = Settings(data_dir=rt.settings.data_dir, llm_max_tokens=24,
                                   loop_replies=2, loop_window_seconds=1)
            time.sleep(1.1)
        inbound.store_inbound(sessions, inst, _msg(f"q{i + 1}", text=text), STALE)
        boxes.append(turns.run(rt, sessions, conv_id))
    assert boxes[0] and boxes[3] is None  # the greeting and one answer: the guard fired
    with sessions() as s:
        stopped = s.scalars(select(Message).where(Message.provider_message_id == "q2")).one()
        assert journey.of(s, stopped.id)[-1].event == "loop_guard"
        last = s.scalars(select(Message).where(Message.provider_message_id == "q4")).one()
        assert last.status == "handed_off"
        assert journey.of(s, last.id)[-1].detail == {"reason": "loop_guard", "queued": True}


def test_a_turn_that_fails_every_time_goes_to_a_person(sessions, inst, rt) -> None:
    """A flow state no step can read (a bad migration, a hand edit) fails the turn the same way
    every time: tried again for ever, the customer heard nothing and no one knew. After
    ``TURN_TRIES`` failures over ``TURN_PATIENCE`` a person has the conversation, the error
    in its journey."""
    conv_id, _ = inbound.store_inbound(sessions, inst, _msg("p1", text="oi"), STALE)
    with sessions.begin() as s:
        s.get_one(Conversation, conv_id).mode = "flow"
        s.add(ChatSession(conversation_id=conv_id, status="open", flow_key="menu",
                          state={"flow_id": "menu", "waiting_for": "???", "status": "active"}))
    for _ in range(turns.TURN_TRIES):  # failing for seconds only: tried again, it may pass
        with pytest.raises(ValueError, match="not a flow state"):
            turns.run(rt, sessions, conv_id)
    with sessions.begin() as s:  # the first failure was TURN_PATIENCE ago
        for step in s.scalars(select(MessageEvent).where(MessageEvent.event == "turn_failed")):
            step.at -= turns.TURN_PATIENCE
    assert turns.run(rt, sessions, conv_id) is None  # failing for a minute: a person
    with sessions() as s:
        assert s.get_one(Conversation, conv_id).mode == "human"
        msg = s.scalars(select(Message).where(Message.provider_message_id == "p1")).one()
        assert msg.status == "handed_off"
        last = journey.of(s, msg.id)[-1]
        assert last.event == "handed_off" and last.detail["reason"] == "turn_failed"
        assert last.detail["tries"] == turns.TURN_TRIES + 1 and "not a flow state" in last.detail[
            "error"]
    assert turns.run(rt, sessions, conv_id) is None  # nothing pending any more


def test_a_customer_who_types_atendente_reaches_a_human(sessions, inst, rt) -> None:
    """The demo shop's own page says: type "atendente". Answered from that page, the customer
    was told to type "atendente" again."""
    with sessions.begin() as s:
        s.get_one(Instance, inst.id).kb_collection = "demo"
    conv_id, _ = inbound.store_inbound(sessions, inst, _msg("a1", text="Atendente!"),
                                       STALE)
    turns.run(rt, sessions, conv_id)
    with sessions() as s:
        reply = s.scalars(select(Message).where(Message.direction == "out")).one()
        assert reply.author == "system" and reply.prompt_tokens is None  # no model was asked
        assert "equipe" in reply.text  # what happens next: the team that will answer
        assert s.get_one(Conversation, conv_id).mode == "human"
        asked = s.scalars(select(Message).where(Message.provider_message_id == "a1")).one()
        steps = {e.event: e.detail for e in journey.of(s, asked.id)}
        assert steps["handed_off"]["reason"] == "asked_for_human"


def test_restart_puts_cut_turns_back_in_line(sessions, inst) -> None:
    conv_id, _ = inbound.store_inbound(sessions, inst, _msg("c1"), STALE)
    assert [m.provider_message_id for m in turns.claim(sessions, conv_id)] == ["c1"]
    assert turns.claim(sessions, conv_id) == []
    convs, _ = recovery.unfinished(sessions)
    assert convs == [conv_id]
    # The conversation lease's next holder puts the cut-off turn back in line.
    assert turns.requeue_cut(sessions, conv_id) == 1
    assert [m.provider_message_id for m in turns.claim(sessions, conv_id)] == ["c1"]


def test_a_failed_turn_puts_its_messages_back(sessions, inst, rt, tmp_path, e5) -> None:
    from qdrant_client import QdrantClient

    from rag.index import KnowledgeBase

    broken = KnowledgeBase(QdrantClient(path=str(tmp_path / "gone")), e5)
    broken.client.close()  # the vector store went away mid-flight
    rt.kb = broken
    conv_id, _ = inbound.store_inbound(sessions, inst, _msg("f1", text="qual o prazo?"),
                                       STALE)
    # The store's own error reaches the caller unchanged: the queue sees it and retries.
    with pytest.raises(RuntimeError, match="QdrantLocal instance is closed"):
        turns.run(rt, sessions, conv_id)
    with sessions() as s:
        msg = s.scalars(select(Message).where(Message.provider_message_id == "f1")).one()
        assert msg.status == "pending"
        steps = [(e.event, e.detail) for e in journey.of(s, msg.id)]
        assert [event for event, _ in steps] == ["received", "turn_started", "session_opened",
                                                 "turn_failed"]
        assert steps[-1][1]["error"].startswith("RuntimeError: QdrantLocal instance is closed")

