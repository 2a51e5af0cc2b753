"""Token spending: every call recorded with its cost; daily and monthly budgets enforced."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from models.base import Completion
from models.spec import ModelSpec
from server.schema import BudgetAlert, Instance, LlmUsage
from server.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    scope: str  # total | instance:<id>
    period: str  # day | month
    usd: float


def period_start(period: str, now: datetime) -> datetime:
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day if period == "day" else day.replace(day=1)


def limits(settings: Settings, inst: Instance | None) -> list[Limit]:
    """The budgets that apply to a call on this instance (or through the API, without one)."""
    out = [Limit("total", p, v) for p, v in (("day", settings.budget_daily_usd),
                                              ("month", settings.budget_monthly_usd))
           if v is not None]
    if inst is not None:
        out += [Limit(f"instance:{inst.id}", p, v)
                for p, v in (("day", inst.budget_daily_usd), ("month", inst.budget_monthly_usd))
                if v is not None]
    return out


def spent(session: Session, limit: Limit, now: datetime) -> float:
    q = select(func.coalesce(func.sum(LlmUsage.cost), 0.0)).where(
        LlmUsage.at >= period_start(limit.period, now))
    if limit.scope != "total":
        q = q.where(LlmUsage.instance_id == int(limit.scope.split(":")[1]))
    return float(session.scalar(q) or 0.0)


def _alert_once(sessions: sessionmaker[Session], limit: Limit, level: str, used: float,
                now: datetime) -> None:
    try:
        with sessions.begin() as s:
            s.add(BudgetAlert(scope=limit.scope, period=limit.period, level=level, spent=used,
                              limit=limit.usd,
                              period_start=period_start(limit.period, now).date().isoformat()))
        log.warning("budget %s %s: %s (%.4f of %.4f USD)", limit.scope, limit.period, level,
                    used, limit.usd)
    except IntegrityError:
        pass  # already recorded for this period


def exceeded(sessions: sessionmaker[Session], settings: Settings, inst: Instance | None,
             now: datetime | None = None) -> list[Limit]:
    """Budgets at or past 100 %; records an alert the first time one passes its alert share."""
    now = now or datetime.now(UTC)
    over: list[Limit] = []
    for limit in limits(settings, inst):
        with sessions() as s:
            used = spent(s, limit, now)
        if used >= limit.usd:
            over.append(limit)
            _alert_once(sessions, limit, "exceeded", used, now)
        elif used >= settings.budget_alert_share * limit.usd:
            _alert_once(sessions, limit, "alert", used, now)
    return over


def record(session: Session, *, spec: ModelSpec, done: Completion, purpose: str,
           instance_id: int | None = None, message_id: int | None = None) -> LlmUsage:
    """Store one call's tokens and cost."""
    row = LlmUsage(instance_id=instance_id, message_id=message_id, purpose=purpose,
                   model=spec.name, prompt_tokens=done.prompt_tokens,
                   completion_tokens=done.completion_tokens,
                   cost=spec.cost(done.prompt_tokens, done.completion_tokens))
    session.add(row)
    return row
