"""API for scheduled messages (agents and up, in the conversations they may see): leave a text
to go out later, once or on a repeat; list them; cancel one. The rules are in
``server.services.schedules``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from server.deps import (
    ADMIN_ERRORS,
    ConversationId,
    CurrentPrincipal,
    RowId,
    SessionsDep,
    errors,
    require,
)
from server.routes.contact_data import answering
from server.services import schedules
from server.tasks import queue_schedule

router = APIRouter(prefix="/api", tags=["admin"], dependencies=[Depends(require("agent"))],
                   responses=ADMIN_ERRORS)


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=20_000, description="What the customer receives")
    send_at: datetime | None = Field(None, description="When (ISO 8601; without an offset, on "
                                     "`timezone`'s clock); none: the repeat's next time")
    repeat: str | None = Field(None, max_length=200, description="Five cron fields, at most "
                               "once an hour: `0 9 * * 1` is Mondays at 9:00")
    timezone: str = Field(schedules.ZONE, max_length=64, description="The clock of `send_at` "
                          "and `repeat`")


class ScheduleOut(BaseModel):
    id: int
    conversation_id: int
    text: str
    next_at: datetime | None = Field(description="The next time it goes out; none once over")
    repeat: str | None
    timezone: str
    status: str = Field(description="scheduled | done | cancelled | missed")
    sent: int = Field(description="Times it went out")
    missed: int = Field(description="Times found more than 30 minutes late (server down), "
                        "not sent")
    author: str
    created_at: datetime


@router.post("/conversations/{conversation_id}/scheduled", status_code=201,
             summary="Schedule a message to the conversation's customer",
             responses=errors(404, 422))
def schedule(who: CurrentPrincipal, conversation_id: ConversationId, body: ScheduleIn,
             sessions: SessionsDep) -> ScheduleOut:
    now = datetime.now(UTC)
    with answering():
        plan = schedules.plan(body.text, body.send_at, body.repeat, body.timezone, now)
        with sessions.begin() as s:
            out = schedules.describe(schedules.create(s, who, conversation_id, plan))
    if plan.first - now < schedules.SOON:  # the minute's look may have passed it already
        queue_schedule(out["id"], plan.first, now)
    return ScheduleOut(**out)


@router.get("/scheduled", summary="Scheduled messages in the conversations the caller sees")
def scheduled(who: CurrentPrincipal, sessions: SessionsDep,
              status: Literal["scheduled", "done", "cancelled", "missed"] | None = None,
              conversation_id: int | None = Query(None, ge=1, le=2**63 - 1),
              limit: int = Query(100, ge=1, le=500)) -> list[ScheduleOut]:
    with sessions() as s:
        return [ScheduleOut(**schedules.describe(r)) for r in schedules.listing(
            s, who, status=status, conversation_id=conversation_id, limit=limit)]


@router.post("/scheduled/{schedule_id}/cancel", summary="Cancel; what it sent stays",
             responses=errors(404, 409))
def cancel(who: CurrentPrincipal, schedule_id: RowId, sessions: SessionsDep) -> ScheduleOut:
    try:
        with sessions.begin() as s:
            return ScheduleOut(**schedules.describe(schedules.cancel(s, who, schedule_id)))
    except schedules.Refused as exc:
        raise HTTPException(409, str(exc)) from None
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None

