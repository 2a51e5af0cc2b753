"""Tokens and cost are recorded per reply; budgets alert, then switch to local or hand off."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from models.spec import ModelSpec
from server.runtime import Runtime
from server.schema import BudgetAlert, Instance, LlmUsage, Message
from server.services import assistant, budget, instances
from server.settings import Settings

Q = "qual o prazo para trocar um produto?"


def _runtime(tmp_path, llm, kb, **settings) -> Runtime:
    s = Settings(data_dir=tmp_path, llm_max_tokens=16, kb_collection="demo", **settings)
    local = s.local_model().model_copy(update={"path": llm.path})
    models = {"local": (local, llm)}
    for spec in s.models:
        from models import registry

        models[spec.name] = (spec, registry.create(spec))
    return Runtime(s, models, kb, httpx.Client())


def test_cost_comes_from_the_price_table(sessions, tmp_path, llm, demo_kb) -> None:
    rt = _runtime(tmp_path, llm, demo_kb, llm_price_in_per_1k=0.5, llm_price_out_per_1k=2.0)
    ans = assistant.answer(rt, sessions, Q, [], assistant.use_for(rt.settings))
    assert ans.completion and ans.spec
    with sessions.begin() as s:
        row = budget.record(s, spec=ans.spec, done=ans.completion, purpose="reply")
    c = ans.completion
    assert row.cost == pytest.approx(c.prompt_tokens * 0.5 / 1000 + c.completion_tokens * 2 / 1000)


def test_spent_budget_hands_off_and_alerts_once(sessions, tmp_path, llm, demo_kb) -> None:
    rt = _runtime(tmp_path, llm, demo_kb, llm_price_in_per_1k=1.0, budget_daily_usd=0.05,
                  budget_action="handoff")
    first = assistant.answer(rt, sessions, Q, [], assistant.use_for(rt.settings))
    assert first.reason in ("answered", "checked") or first.reason.startswith("guard_")
    with sessions.begin() as s:  # a prompt of 50+ tokens at $1/1k spends the $0.05
        budget.record(s, spec=first.spec, done=first.completion, purpose="reply")
    for _ in range(2):
        later = assistant.answer(rt, sessions, Q, [], assistant.use_for(rt.settings))
        assert (later.reason, later.handoff, later.completion) == ("budget", True, None)
    with sessions() as s:
        alerts = list(s.scalars(select(BudgetAlert)))
    assert [(a.scope, a.period, a.level) for a in alerts] == [("total", "day", "exceeded")]


def test_alert_share_is_recorded_before_the_limit(sessions, tmp_path, llm, demo_kb) -> None:
    rt = _runtime(tmp_path, llm, demo_kb, budget_monthly_usd=1.0, budget_alert_share=0.5)
    with sessions.begin() as s:
        s.add(LlmUsage(purpose="reply", model="local", cost=0.6))
    assert budget.exceeded(sessions, rt.settings, None) == []
    with sessions() as s:
        assert s.scalars(select(BudgetAlert.level)).all() == ["alert"]


def test_spent_instance_budget_switches_to_the_local_model(sessions, tmp_path, llm,
                                                           demo_kb) -> None:
    remote = ModelSpec(name="gpt", provider="openai", base_url="http://127.0.0.1:9/v1",
                       model="gpt-fake", max_retries=0, timeout_s=2)
    rt = _runtime(tmp_path, llm, demo_kb, models=[remote], llm_default="gpt")
    inst = instances.ensure_simulator(sessions, "loja", "http://127.0.0.1:9")
    with sessions.begin() as s:
        row = s.get_one(Instance, inst.id)
        row.budget_daily_usd = 0.01
        s.add(LlmUsage(instance_id=inst.id, purpose="reply", model="gpt", cost=0.02))
    with sessions() as s:
        inst = s.get_one(Instance, inst.id)
    ans = assistant.answer(rt, sessions, Q, [], assistant.use_for(rt.settings, inst))
    assert ans.spec is not None and ans.spec.name == "local"
    assert ans.failures == []  # the spent remote model was not even tried
    other = assistant.answer(rt, sessions, Q, [], assistant.use_for(rt.settings))
    assert other.failures and other.failures[0][0] == "gpt"  # not spent: tried, unreachable


def test_replies_keep_tokens_and_cost(sessions, tmp_path, llm, demo_kb) -> None:
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from gateway_bridge import InboundMessage
    from server.engine import turns
    from server.services import inbound

    rt = _runtime(tmp_path, llm, demo_kb, llm_price_in_per_1k=0.1, llm_price_out_per_1k=0.2)
    inst = instances.ensure_simulator(sessions, "loja", "http://127.0.0.1:9")
    msg = InboundMessage("u1", "5511987650000", "5511987650000", None, None, Q,
                         datetime.now(UTC))
    rules = inbound.Rules(timedelta(minutes=5), Path("/nonexistent"), 1)
    conv_id, _ = inbound.store_inbound(sessions, inst, msg, rules)
    turns.run(rt, sessions, conv_id)
    with sessions() as s:
        reply = s.scalars(select(Message).where(Message.direction == "out")).one()
        usage = s.scalars(select(LlmUsage)).one()
    assert reply.cost and reply.cost == pytest.approx(usage.cost)
    assert (usage.message_id, usage.instance_id, usage.prompt_tokens) == (
        reply.id, inst.id, reply.prompt_tokens)
