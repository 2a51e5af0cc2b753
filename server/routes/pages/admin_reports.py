"""Page: what the models cost (managers and up), from the same report as
``GET /api/reports/usage``: the budgets and how much of each is spent, the cost of each day as
a chart, and the days' calls, tokens and cost by model and purpose as a table."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from babel.numbers import format_decimal
from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.deps import PageManager, SessionsDep, SettingsDep
from server.services import reports
from server.services.reports import UsageRow
from server.web.render import N_, page

router = APIRouter()
PERIODS = (7, 30, 90)
PURPOSE = {"reply": N_("Respostas"), "api": N_("API"), "memory": N_("Memória")}
SCOPE = {"total": N_("Total"), "instance": N_("Número")}
PERIOD = {"day": N_("dia"), "month": N_("mês")}


def money(value: float, language: str, places: int = 4) -> str:
    """US dollars as the page's language writes them: "US$ 0,8750" in pt-BR (model prices
    are in dollars; a reply costs fractions of a cent, hence four places)."""
    pattern = "#,##0." + "0" * places
    return "US$ " + format_decimal(value, pattern, locale="pt_BR" if language == "pt-BR"
                                   else "en_US")


def day_label(day: str, language: str) -> str:
    """"08/12/2026" in pt-BR; the ISO date otherwise."""
    return date.fromisoformat(day).strftime("%d/%m/%Y") if language == "pt-BR" else day


@dataclass
class Day:
    day: str
    cost: float
    calls: int
    share: float = 0.0  # of the dearest day's cost: the bar's height


def days_chart(rows: list[UsageRow], days: int, today: date) -> list[Day]:
    """Each of the last ``days`` days with its cost and calls (a day with none is shown, at
    zero), the dearest day's bar the tallest."""
    cost: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for r in rows:
        cost[r.day] += r.cost_usd
        calls[r.day] += r.calls
    out = [Day(d, cost[d], calls[d]) for d in
           ((today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1))]
    top = max(d.cost for d in out) or 1.0
    for d in out:
        d.share = d.cost / top
    return out


@router.get("/admin/reports")
def reports_page(who: PageManager, request: Request, sessions: SessionsDep,
                 settings: SettingsDep) -> Response:
    asked = request.query_params.get("days", "30")
    days = int(asked) if asked.isdigit() and int(asked) in PERIODS else 30
    now = datetime.now(UTC)
    with sessions() as s:
        report = reports.usage(s, settings, days=days, now=now)
    rows = sorted(report.rows, key=lambda r: (r.day, r.model, r.purpose), reverse=True)
    return page(request, "admin/reports.html", {
        "report": report, "rows": rows, "days": days, "periods": PERIODS,
        "chart": days_chart(report.rows, days, now.date()),
        "total_cost": sum(r.cost_usd for r in report.rows),
        "total_calls": sum(r.calls for r in report.rows),
        "total_errors": sum(r.errors for r in report.rows),
        "purpose_names": PURPOSE, "scope_names": SCOPE, "period_names": PERIOD,
        "money": money, "day_label": day_label}, who=who)
