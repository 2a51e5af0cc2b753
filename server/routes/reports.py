"""Admin reports: what the models cost, by day and model, and the budgets' state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import select

from server.deps import ADMIN_ERRORS, db_sessions, require_admin, settings_dep
from server.schema import BudgetAlert, Instance, LlmUsage
from server.services import budget

router = APIRouter(prefix="/api/reports", tags=["admin"], dependencies=[Depends(require_admin)],
                   responses=ADMIN_ERRORS)


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
    period: str
    limit_usd: float
    spent_usd: float
    share: float


class UsageReport(BaseModel):
    rows: list[UsageRow]
    budgets: list[BudgetState]
    alerts: list[dict[str, object]]


@router.get("/usage", summary="Tokens and cost per day and model; budgets")
def usage(days: int = Query(30, ge=1, le=366)) -> UsageReport:
    since = datetime.now(UTC) - timedelta(days=days)
    with db_sessions()() as s:
        rows = s.execute(
            select(LlmUsage.at, LlmUsage.model, LlmUsage.purpose, LlmUsage.error,
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
        settings, now = settings_dep(), datetime.now(UTC)
        states = []
        for inst in [None, *s.scalars(select(Instance))]:
            for lim in budget.limits(settings, inst):
                if inst is not None and lim.scope == "total":
                    continue
                used = budget.spent(s, lim, now)
                states.append(BudgetState(scope=lim.scope, period=lim.period, limit_usd=lim.usd,
                                          spent_usd=round(used, 6),
                                          share=round(used / lim.usd, 4) if lim.usd else 1.0))
        alerts = [{"scope": a.scope, "period": a.period, "level": a.level, "spent": a.spent,
                   "limit": a.limit, "at": a.at.isoformat()}
                  for a in s.scalars(select(BudgetAlert).order_by(BudgetAlert.id.desc())
                                     .limit(50))]
    return UsageReport(rows=sorted(grouped.values(), key=lambda r: (r.day, r.model)),
                       budgets=states, alerts=alerts)
