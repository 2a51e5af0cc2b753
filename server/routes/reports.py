"""Reports (managers and up): what the models cost, by day and model, and the budgets' state."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query

from server.deps import ADMIN_ERRORS, SessionDep, SettingsDep, require
from server.services import reports
from server.services.reports import UsageReport

router = APIRouter(prefix="/api/reports", tags=["admin"],
                   dependencies=[Depends(require("manager"))], responses=ADMIN_ERRORS)


@router.get("/usage", summary="Tokens and cost per day and model; budgets")
def usage(s: SessionDep, settings: SettingsDep,
          days: int = Query(30, ge=1, le=366)) -> UsageReport:
    return reports.usage(s, settings, days=days, now=datetime.now(UTC))
