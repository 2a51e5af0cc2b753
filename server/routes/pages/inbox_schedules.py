"""Pages: scheduling a message in a chat, and cancelling one. The form asks for a day and a
time on the company's clock and offers the repeats people ask for (every day, every week on
that weekday, every month on that day), which become the cron expression the API takes; the
rules are ``server.services.schedules``'s, as for the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from server.deps import ConversationId, PageAgent, RowId, SessionsDep
from server.routes.pages.inbox_view import draw, scheduled_context
from server.services import schedules
from server.services.contact_data import Invalid
from server.tasks import queue_schedule
from server.web.render import N_

router = APIRouter()
BAD_TIME = N_("Escolha o dia e a hora.")
# The service's refusals by field, in the page's words (the API answers in its own).
WHY = {"text": N_("Escreva a mensagem (até 4096 caracteres)."),
       "send_at": N_("Escolha um dia e uma hora que ainda não passaram, até um ano à frente."),
       "repeat": N_("Essa repetição não é aceita: no máximo uma vez por hora."),
       "monthly": N_("Para repetir todo mês, escolha um dia até 28: nem todo mês tem 29, 30 "
                     "ou 31.")}
CHANGED = {"HX-Trigger": "thread-changed"}


def _cron(repeat: str, at: datetime) -> str | None:
    """The repeat the form offers, as five cron fields on the chosen time's clock; ``Invalid``
    for one it does not offer, or a month's day not every month has."""
    weekday = (at.weekday() + 1) % 7  # cron counts from Sunday
    if repeat == "monthly" and at.day > 28:
        raise Invalid("a monthly repeat on the 29th to 31st skips the months without it",
                      "monthly")
    if repeat and repeat not in ("daily", "weekly", "monthly"):
        raise Invalid(f"no such repeat {repeat[:16]!r}", "repeat")
    return {"daily": f"{at.minute} {at.hour} * * *",
            "weekly": f"{at.minute} {at.hour} * * {weekday}",
            "monthly": f"{at.minute} {at.hour} {at.day} * *"}.get(repeat)


def _box(request: Request, who: PageAgent, sessions: SessionsDep, conversation_id: int,
         **context: object) -> Response:
    """The scheduling box again: its list, and the form (emptied, or with the error)."""
    if request.headers.get("HX-Request") != "true":
        return RedirectResponse(f"/inbox/{conversation_id}", 303)
    with sessions() as s:
        drawn = scheduled_context(s, who, conversation_id)
    return draw(request, "chat.html", {"head": {"id": conversation_id}, "schedule_open": True,
                                       **drawn, **context},
                who, block="schedule_box", headers=None if context else CHANGED)


@router.post("/inbox/{conversation_id}/scheduled")
def schedule(who: PageAgent, conversation_id: ConversationId, request: Request,
             sessions: SessionsDep, text: Annotated[str, Form()] = "",
             send_at: Annotated[str, Form()] = "", repeat: Annotated[str, Form()] = ""
             ) -> Response:
    # No max_length here: FastAPI's 422 would be JSON, which the page's form never shows;
    # the service refuses a long text, and a long time is no time.
    now = datetime.now(UTC)
    draft = {"schedule_draft": {"text": text[:20_000], "send_at": send_at[:40],
                                "repeat": repeat[:16]}}
    try:
        at = datetime.fromisoformat(send_at[:40])  # "2026-12-10T09:00" from the picker
    except ValueError:
        return _box(request, who, sessions, conversation_id, schedule_error=BAD_TIME, **draft)
    try:
        plan = schedules.plan(text[:20_000], at.replace(tzinfo=None), _cron(repeat, at),
                              schedules.ZONE, now)
        with sessions.begin() as s:
            row = schedules.create(s, who, conversation_id, plan)
            sid = row.id
    except Invalid as exc:
        return _box(request, who, sessions, conversation_id,
                    schedule_error=WHY.get(exc.field or "", BAD_TIME), **draft)
    if plan.first - now < schedules.SOON:
        queue_schedule(sid, plan.first, now)
    return _box(request, who, sessions, conversation_id)


@router.post("/inbox/{conversation_id}/scheduled/{schedule_id}/cancel")
def cancel(who: PageAgent, conversation_id: ConversationId, schedule_id: RowId,
           request: Request, sessions: SessionsDep) -> Response:
    try:
        with sessions.begin() as s:
            schedules.cancel(s, who, schedule_id)
    except (LookupError, schedules.Refused):
        pass  # sent or cancelled meanwhile: the list shows what it is now
    return _box(request, who, sessions, conversation_id)
