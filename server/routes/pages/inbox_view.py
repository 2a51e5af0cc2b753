"""What the inbox's pages share: the words for states, authors and deliveries, the clock they
are shown in, and drawing the list and the chat's parts. The inbox's routes are split by job
(``inbox``: reading; ``inbox_actions``: doing; ``inbox_canned``: canned responses) and all draw
through here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from server.services import canned, desk, inbox, schedules, thread
from server.services.access import Principal
from server.web import page
from server.web.render import N_

ZONE = ZoneInfo("America/Sao_Paulo")  # the companies are Brazilian; shown in their time
STATUS = {"open": N_("Com o robô"), "queued": N_("Pendente"), "assigned": N_("Em atendimento"),
          "closed": N_("Encerrada")}
STATUS_STYLE = {"open": "info", "queued": "warn", "assigned": "ok", "closed": ""}
MODE = {"ai": N_("Assistente"), "flow": N_("Fluxo"), "human": N_("Pessoa")}
AUTHOR = {"customer": N_("Cliente"), "flow": N_("Fluxo"), "assistant": N_("Assistente"),
          "agent": N_("Atendente"), "system": N_("Sistema"), "note": N_("Nota interna")}
DELIVERY = {"queued": N_("Na fila"), "sent": N_("Enviada"), "delivered": N_("Entregue"),
            "read": N_("Lida"), "played": N_("Ouvida"), "failed": N_("Falhou"),
            "deleted": N_("Apagada")}
# Plain characters every system font has (an emoji clock shows as a box without an emoji font).
TICKS = {"queued": "…", "sent": "✓", "delivered": "✓✓", "read": "✓✓", "played": "✓✓",
         "failed": "!", "deleted": "×"}
# The repeats the scheduling form offers (``inbox_schedules`` turns each into cron fields).
REPEATS = [("", N_("Não repetir")), ("daily", N_("Todo dia")),
           ("weekly", N_("Toda semana, no mesmo dia")), ("monthly", N_("Todo mês, no mesmo dia"))]
FILTER_STATUS = [("active", N_("Abertas e pendentes")), ("open", N_("Em aberto")),
                 ("pending", N_("Pendentes")), ("closed", N_("Encerradas")),
                 ("all", N_("Todas"))]


def clock(at: datetime | None, now: datetime | None = None) -> str:
    """"14:05" today, else "03/12 14:05", in the company's time."""
    if at is None:
        return ""
    local = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(ZONE)
    today = (now or datetime.now(UTC)).astimezone(ZONE).date()
    return f"{local:%H:%M}" if local.date() == today else f"{local:%d/%m %H:%M}"


def labels() -> dict[str, Any]:
    return {"status_names": STATUS, "status_style": STATUS_STYLE, "mode_names": MODE,
            "author_names": AUTHOR, "delivery_names": DELIVERY, "ticks": TICKS,
            "clock": clock, "filter_status": FILTER_STATUS}


def filters_of(request: Request) -> inbox.InboxFilter:
    """The list's filters from the query string; a value that is not one is ignored."""
    q = request.query_params

    def number(name: str) -> int | None:
        value = q.get(name, "")
        return int(value) if value.isdigit() and len(value) < 19 else None

    def word(name: str, words: tuple[str, ...]) -> int | str | None:
        value = q.get(name, "")
        return value if value in words else number(name)

    status = q.get("status", "active")
    return inbox.InboxFilter(status=status if status in inbox.STATES or status == "all"
                             else "active", team=word("team", ("none",)),
                             agent=word("agent", ("none", "me")), instance=number("instance"),
                             tag=number("tag"), unread=q.get("unread") == "1")


def list_context(s: Session, who: Principal, request: Request,
                 current: int | None = None) -> dict[str, Any]:
    """The list's rows (a page of 50, and the link to the next) with its filters."""
    filters = filters_of(request)
    rows = inbox.listing(s, who, filters, before=inbox.parse_cursor(
        request.query_params.get("before")))
    query = {k: v for k, v in request.query_params.items()
             if k in ("status", "team", "agent", "instance", "tag", "unread") and v}
    return {"rows": rows, "filters": filters, "choices": inbox.choices(s, who),
            "filtered": filters != inbox.InboxFilter(), "query": query, "current": current,
            "next_page": rows[-1].cursor if len(rows) == 50 else None,
            "paged": bool(request.query_params.get("before")),
            "online": desk.is_online(s, who), **labels()}


def chat_context(s: Session, who: Principal, conversation_id: int) -> dict[str, Any]:
    """The chat's header and history; reading it marks it read for this person."""
    head = thread.header(s, conversation_id)
    thread.mark_read(s, who, conversation_id)
    return {"head": head, "entries": thread.history(s, conversation_id, head.contact),
            "canned": canned.listing(s), **scheduled_context(s, who, conversation_id),
            **labels()}


def scheduled_context(s: Session, who: Principal, conversation_id: int) -> dict[str, Any]:
    """The chat's messages waiting to go out, and the repeats the form offers."""
    return {"scheduled": schedules.listing(s, who, status="scheduled",
                                           conversation_id=conversation_id),
            "repeats": REPEATS, "repeat_words": repeat_words, "clock": clock}


def repeat_words(cron: str) -> str:
    """A repeat in the words the form offered it in; any other, as its cron fields."""
    minute, hour, day, month, weekday = (cron.split() + ["", "", "", "", ""])[:5]
    if not (minute.isdigit() and hour.isdigit() and month == "*"):
        return cron
    if day == "*" and weekday == "*":
        return REPEATS[1][1]
    if day == "*" and weekday.isdigit():
        return REPEATS[2][1]
    if day.isdigit() and weekday == "*":
        return REPEATS[3][1]
    return cron


def draw(request: Request, template: str, context: dict[str, Any], who: Principal,
         block: str | None = None, headers: dict[str, str] | None = None,
         partial: bool = False) -> HTMLResponse:
    return page(request, f"inbox/{template}", context, who=who, block=block, headers=headers,
                partial=partial)
