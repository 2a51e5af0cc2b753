"""Budget periods on SQLite and PostgreSQL: a day and a month are UTC's, so spend recorded just
before midnight UTC (or the first of the month) counts for the period that ends there, and spend
just after it starts the next one, wherever the clock that asks stands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.base import Completion
from models.spec import ModelSpec
from server.schema import BudgetAlert, Instance
from server.services import budget, instances
from server.settings import Settings

PRICED = ModelSpec(name="gpt", provider="openai", model="gpt-fake", price_in_per_1k=1.0)
SAO_PAULO = timezone(timedelta(hours=-3))  # where 21:00 is midnight UTC
TICK = timedelta(microseconds=1)


def _spend(sessions: sessionmaker[Session], usd: float, at: datetime,
           instance_id: int | None = None) -> None:
    """One call costing ``usd`` (at $1 per 1k prompt tokens), recorded as made at ``at``."""
    done = Completion("ok", "stop", round(usd * 1000), 0, "gpt-fake")
    with sessions.begin() as s:
        row = budget.record(s, spec=PRICED, done=done, purpose="reply", instance_id=instance_id)
        row.at = at
    assert PRICED.cost(done.prompt_tokens, 0) == pytest.approx(usd)


def _alerts(sessions: sessionmaker[Session]) -> list[tuple[str, str, str, str]]:
    with sessions() as s:
        return [(a.scope, a.period, a.level, a.period_start) for a in s.scalars(
            select(BudgetAlert).order_by(BudgetAlert.id))]


def test_a_day_is_utcs_from_midnight_to_midnight(sessions, tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, budget_daily_usd=1.0)  # alert at 80 %
    day = budget.Limit("total", "day", 1.0)
    midnight = datetime(2025, 3, 15, tzinfo=UTC)
    _spend(sessions, 0.9, midnight - TICK)  # the 14th's last instant
    assert budget.exceeded(sessions, settings, None, now=midnight - TICK) == []
    assert _alerts(sessions) == [("total", "day", "alert", "2025-03-14")]
    _spend(sessions, 0.6, midnight)  # the 15th's first: a new day, 0.6 of 1.0 spent
    for now in (midnight, midnight + timedelta(hours=23, minutes=59),
                midnight.astimezone(SAO_PAULO)):  # 21:00 of the 14th there
        with sessions() as s:
            assert budget.spent(s, day, now) == pytest.approx(0.6)
        assert budget.exceeded(sessions, settings, None, now=now) == []
    assert _alerts(sessions) == [("total", "day", "alert", "2025-03-14")]
    _spend(sessions, 0.4, midnight + timedelta(seconds=1))
    assert budget.exceeded(sessions, settings, None, now=midnight + timedelta(seconds=1)) == [day]
    assert _alerts(sessions) == [("total", "day", "alert", "2025-03-14"),
                                 ("total", "day", "exceeded", "2025-03-15")]
    # The month holds both days.
    with sessions() as s:
        assert budget.spent(s, budget.Limit("total", "month", 9), midnight) == pytest.approx(1.9)


def test_a_month_starts_on_the_first_at_midnight_utc(sessions, tmp_path) -> None:
    inst = instances.ensure_simulator(sessions, "loja", "http://127.0.0.1:9")
    other = instances.ensure_simulator(sessions, "outra", "http://127.0.0.1:9")
    with sessions.begin() as s:
        s.get_one(Instance, inst.id).budget_monthly_usd = 10.0
    with sessions() as s:
        inst = s.get_one(Instance, inst.id)
    settings = Settings(data_dir=tmp_path)
    month = budget.Limit(f"instance:{inst.id}", "month", 10.0)
    first = datetime(2025, 4, 1, tzinfo=UTC)
    _spend(sessions, 9.0, first - TICK, inst.id)  # March's last instant
    _spend(sessions, 50.0, first - TICK, other.id)  # another number's spend is not this one's
    assert budget.exceeded(sessions, settings, inst, now=first - TICK) == []
    _spend(sessions, 2.0, first, inst.id)  # April's first instant
    # In March, 11 of 10 would be spent; April has 2: 21:00 of March 31 in São Paulo is April
    # in UTC, and so is the last instant of April 1.
    for now in (first, first.astimezone(SAO_PAULO), first + timedelta(days=1) - TICK):
        with sessions() as s:
            assert budget.spent(s, month, now) == pytest.approx(2.0)
        assert budget.exceeded(sessions, settings, inst, now=now) == []
    _spend(sessions, 8.0, datetime(2025, 4, 30, 23, 59, 59, 999999, tzinfo=UTC), inst.id)
    assert budget.exceeded(sessions, settings, inst, now=datetime(2025, 4, 30, 23, 59, 59,
                                                                  999999, tzinfo=UTC)) == [month]
    may = datetime(2025, 5, 1, tzinfo=UTC)
    _spend(sessions, 0.5, may, inst.id)
    assert budget.exceeded(sessions, settings, inst, now=may) == []
    scope = f"instance:{inst.id}"
    assert _alerts(sessions) == [(scope, "month", "alert", "2025-03-01"),
                                 (scope, "month", "exceeded", "2025-04-01")]
