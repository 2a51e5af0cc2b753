"""Admin reports: what the models cost, by day and model, and the budgets' state now."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.schema import BudgetAlert, Instance, LlmUsage
from server.services import budget
from server.settings import Settings


class UsageRow(BaseModel):
    day: str
    model: str
    purpose: str
    calls: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class BudgetState(BaseModel):
    scope: str
    name: str  # the number's name for an instance's budget; "total" for the company's
    period: str
    limit_usd: float
    spent_usd: float
    share: float


class UsageReport(BaseModel):
    rows: list[UsageRow]
    budgets: list[BudgetState]
    alerts: list[dict[str, object]]


def usage(s: Session, settings: Settings, *, days: int, now: datetime) -> UsageReport:
    """Calls, tokens and cost per (day, model, purpose) over the last ``days`` days, today
    included (whole UTC days: a chart of them has a bar for every row); every budget's spending
    in its current period; the latest 50 budget alerts."""
    first = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return UsageReport(rows=_rows(s, first),
                       budgets=_budgets(s, settings, now), alerts=_alerts(s))


def _rows(s: Session, since: datetime) -> list[UsageRow]:
    rows = s.execute(select(LlmUsage.at, LlmUsage.model, LlmUsage.purpose, LlmUsage.error,
                            LlmUsage.prompt_tokens, LlmUsage.completion_tokens, LlmUsage.cost)
                     .where(LlmUsage.at >= since)).all()
    grouped: dict[tuple[str, str, str], UsageRow] = {}
    for at, model, purpose, error, p, c, cost in rows:
        key = (at.date().isoformat(), model, purpose)
        row = grouped.setdefault(key, UsageRow(day=key[0], model=model, purpose=purpose,
                                               calls=0, errors=0, prompt_tokens=0,
                                               completion_tokens=0, cost_usd=0.0))
        row.calls += 1
        row.errors += error is not None
        row.prompt_tokens += p
        row.completion_tokens += c
        row.cost_usd += cost
    return sorted(grouped.values(), key=lambda r: (r.day, r.model))


def _budgets(s: Session, settings: Settings, now: datetime) -> list[BudgetState]:
    states = []
    live = select(Instance).where(Instance.deleted_at.is_(None))  # a removed number spends none
    for inst in [None, *s.scalars(live)]:
        for lim in budget.limits(settings, inst):
            if inst is not None and lim.scope == "total":
                continue
            used = budget.spent(s, lim, now)
            states.append(BudgetState(scope=lim.scope, name=inst.name if inst else "total",
                                      period=lim.period, limit_usd=lim.usd,
                                      spent_usd=round(used, 6),
                                      share=round(used / lim.usd, 4) if lim.usd else 1.0))
    return states


def _alerts(s: Session) -> list[dict[str, object]]:
    return [{"scope": a.scope, "period": a.period, "level": a.level, "spent": a.spent,
             "limit": a.limit, "at": a.at.isoformat()}
            for a in s.scalars(select(BudgetAlert).order_by(BudgetAlert.id.desc()).limit(50))]
