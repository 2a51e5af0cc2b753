"""AI mode's turn at the engine level, with a remote model played by a local server speaking
OpenAI's wire format: handoffs (the model fails, the documents hold no answer, the customer asks
for a person) tell the customer what happens next once; the same question asked again in a
session is answered from the session's memory, with no model call, counted."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from eval.answers import MODEL_EXTRACTION
from models import registry
from models.spec import ModelSpec
from server.engine import turns
from server.runtime import Runtime
from server.schema import Conversation, Instance, LlmUsage, Message
from server.services import inbound, journey
from server.settings import Settings
from tests.conftest import serve_mode
from tests.fake_openai import FakeOpenAI
from tests.test_store import STALE, _msg

TROCA = "Você tem 30 dias corridos para solicitar a troca de qualquer produto."


@pytest.fixture
def remote(sessions, inst, tmp_path, llm, demo_kb) -> Iterator[tuple[Runtime, FakeOpenAI]]:
    fake = FakeOpenAI()
    spec = ModelSpec(name="gpt", provider="openai", base_url=fake.url, model="gpt-fake",
                     max_retries=0)
    settings = Settings(data_dir=tmp_path, kb_collection="demo", models=[spec],
                        llm_default="gpt", llm_fallback=[])
    with sessions.begin() as s:
        s.get_one(Instance, inst.id).kb_collection = "demo"
    serve_mode(sessions, "demo", MODEL_EXTRACTION)  # these turns follow what the model writes
    with httpx.Client() as http:
        yield Runtime(settings, {"local": (settings.local_model(), llm),
                                 "gpt": (spec, registry.create(spec))}, demo_kb, http), fake
    fake.close()


def _ask(sessions, inst, rt: Runtime, pid: str, text: str) -> Message:
    conv_id, _ = inbound.store_inbound(sessions, inst, _msg(pid, text=text), STALE)
    turns.run(rt, sessions, conv_id)
    with sessions() as s:
        asked = s.scalars(select(Message).where(Message.provider_message_id == pid)).one()
        return s.scalars(select(Message).where(Message.reply_to_id == asked.id)).one()


def _events(sessions, pid: str) -> dict[str, dict]:
    with sessions() as s:
        msg = s.scalars(select(Message).where(Message.provider_message_id == pid)).one()
        return {e.event: e.detail or {} for e in journey.of(s, msg.id)}


def test_the_same_question_again_is_answered_from_memory(sessions, inst, remote) -> None:
    rt, fake = remote
    fake.script = [("ok", TROCA)]
    first = _ask(sessions, inst, rt, "q1", "qual o prazo para trocar um produto?")
    assert first.text == TROCA and len(fake.requests) == 1
    again = _ask(sessions, inst, rt, "q2", "Qual o prazo pra trocar um produto??")
    assert again.text == TROCA and len(fake.requests) == 1  # no second model call
    assert _events(sessions, "q2")["answered"]["from_memory"] is True
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(LlmUsage).where(
            LlmUsage.purpose == "memory")) == 1
        assert s.scalar(select(func.count()).select_from(LlmUsage).where(
            LlmUsage.purpose == "reply")) == 1


def test_a_failing_model_hands_off_and_says_what_happens_next(sessions, inst, remote) -> None:
    rt, fake = remote
    fake.script = [("status", 500)]
    reply = _ask(sessions, inst, rt, "f1", "qual o prazo para trocar um produto?")
    assert reply.text.startswith("Estou com dificuldade para responder agora.")
    assert "Uma pessoa vai te responder em breve" in reply.text
    assert _events(sessions, "f1")["handed_off"]["reason"] == "model_error"
    with sessions() as s:
        conv = s.get_one(Conversation, reply.conversation_id)
        assert (conv.mode, conv.status) == ("human", "queued")


def test_no_answer_hands_off_and_says_what_happens_next(sessions, inst, remote) -> None:
    rt, fake = remote
    # Either the evidence step finds nothing (no model call) or the model says it has no answer.
    fake.script = [("ok", rt.settings.models[0].refusal)]
    reply = _ask(sessions, inst, rt, "n1", "qual a capital da Mongólia?")
    assert reply.text.startswith("Não encontrei essa informação nos nossos materiais.")
    assert "Uma pessoa vai te responder em breve" in reply.text
    assert _events(sessions, "n1")["handed_off"]["reason"] in ("no_passages", "refused")


def test_while_queued_the_assistant_answers_what_it_can_and_is_silent_otherwise(
        sessions, inst, remote) -> None:
    rt, fake = remote
    told = _ask(sessions, inst, rt, "h1", "quero falar com um atendente")
    assert "Uma pessoa vai te responder em breve" in told.text
    fake.script = [("ok", TROCA)]
    assert _ask(sessions, inst, rt, "h2", "qual o prazo para trocar um produto?").text == TROCA
    fake.script = [("ok", rt.settings.models[0].refusal)]
    conv_id, _ = inbound.store_inbound(sessions, inst, _msg("h3", text="qual a capital da "
                                                              "Mongólia?"), STALE)
    assert turns.run(rt, sessions, conv_id) is None  # no second "a person will answer"
    assert _events(sessions, "h3")["for_human"]["queued"] is True
    with sessions() as s:
        assert s.get_one(Conversation, conv_id).status == "queued"


AI_FLOW = """\
id: so-ia
start: duvidas
nodes:
  duvidas: {kind: ai, text: "Pode perguntar!", next: fim}
  fim: {kind: end}
"""


def test_a_flows_ai_node_on_a_number_with_ai_off_hands_to_a_person(sessions, inst,
                                                                   remote) -> None:
    import flows
    from server.services import flow_store

    rt, fake = remote
    with sessions.begin() as s:
        flow_store.save(s, flows.from_yaml(AI_FLOW))
        number = s.get_one(Instance, inst.id)
        number.default_flow, number.ai_enabled = "so-ia", False
    assert _ask(sessions, inst, rt, "o1", "oi").text == "Pode perguntar!"
    told = _ask(sessions, inst, rt, "o2", "qual o prazo para trocar um produto?")
    assert "Uma pessoa vai te responder em breve" in told.text and fake.requests == []
    assert _events(sessions, "o2")["handed_off"]["reason"] == "ai_off"
    with sessions() as s:
        assert s.get_one(Conversation, told.conversation_id).mode == "human"
