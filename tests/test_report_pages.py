"""The reports page in a browser, against the demo company: a manager reads what the models
cost (totals, a bar per day, the table by day, model and use) over the period they choose; an
agent is refused it. Kept as screenshots at desktop and phone width."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from server.db import sessions_for
from server.schema import LlmUsage
from tests.web import PHONE, Web, shot


def _spend(web: Web) -> None:
    """What the assistant and the API spent: today, three days ago, and 40 days ago."""
    now = datetime.now(UTC)
    with sessions_for(web.db_url).begin() as s:
        for days, purpose, model, cost, error in [
                (0, "reply", "gpt", 0.25, None), (0, "reply", "gpt", 0.50, None),
                (0, "api", "gpt", 0.125, None), (3, "reply", "local", 0.0, None),
                (3, "reply", "gpt", 0.0, "server answered 500"), (40, "reply", "gpt", 9.0, None)]:
            s.add(LlmUsage(purpose=purpose, model=model, prompt_tokens=600,
                           completion_tokens=40, cost=cost, error=error,
                           at=now - timedelta(days=days)))


def test_a_manager_reads_what_the_models_cost_and_an_agent_cannot(web: Web,
                                                                 browser: Any) -> None:
    _spend(web)
    page = web.login(browser, "manager")
    page.locator("a.nav-item:visible", has_text="Relatórios").first.click()
    page.wait_for_url("**/admin/reports")
    totals = page.locator(".report-totals").inner_text()
    assert "US$ 0,8750" in totals  # 40 days ago is outside the 30 days shown
    assert "5" in totals and "1" in totals  # calls, failures
    assert page.locator(".day-chart rect").count() == 30
    rows = page.locator("table.list:not(.budgets) tbody tr")
    assert rows.count() == 4  # (today, gpt, reply), (today, gpt, api), and two of 3 days ago
    assert "Respostas" in rows.first.inner_text() or "API" in rows.first.inner_text()
    assert "o gasto não tem limite" in page.locator("main").inner_text()  # no budget set
    shot(page, "reports-desktop")
    page.click("text=Últimos 90 dias")
    page.wait_for_url("**/admin/reports?days=90")
    assert "US$ 9,8750" in page.locator(".report-totals").inner_text()
    assert page.locator(".day-chart rect").count() == 90
    phone = web.login(browser, "manager", viewport=PHONE)
    phone.goto("/admin/reports")
    shot(phone, "reports-phone")
    agent = web.login(browser, "agent")
    refused = agent.goto("/admin/reports")
    assert refused is not None and refused.status == 403
    assert agent.locator("a.nav-item", has_text="Relatórios").count() == 0
    for p in (page, phone, agent):
        p.context.close()
