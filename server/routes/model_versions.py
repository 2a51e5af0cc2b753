"""Admin API for the local model's versions: list them, promote through the gate, roll back;
and each knowledge base's answer mode, as the gate chose it.

Comparing (the gate itself) runs for minutes, so it runs from the CLI (`atende models
compare`); promotion here accepts only a version whose gate passed against the one serving.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from server import runtime
from server.deps import ADMIN_ERRORS, SessionsDep, SettingsDep, errors, require_admin
from server.services import answer_modes, model_versions

router = APIRouter(prefix="/api/models", tags=["admin"], dependencies=[Depends(require_admin)],
                   responses=ADMIN_ERRORS)


class Why(BaseModel):
    reason: str = Field("", max_length=500, description="Why, kept in the history.")


@router.get("/versions")
def versions(sessions: SessionsDep) -> list[dict[str, Any]]:
    """Every version of the local model with its figures and gate; which one serves."""
    rows, serving = model_versions.listing(sessions)
    return [model_versions.as_dict(v, serving) for v in rows]


@router.get("/history")
def history(sessions: SessionsDep) -> list[dict[str, Any]]:
    """Promotions and rollbacks, newest first."""
    return model_versions.history(sessions)


@router.get("/answer-modes")
def modes(sessions: SessionsDep, settings: SettingsDep) -> list[dict[str, Any]]:
    """How each knowledge base is answered (model, extraction, model+extraction or
    model-checked) and why: every one the gate judged, and the configured one."""
    return [m.as_dict() for m in answer_modes.listing(sessions, [settings.kb_collection])]


@router.post("/versions/{name}/promote", responses=errors(404, 409))
def promote(name: str, sessions: SessionsDep, settings: SettingsDep,
            body: Why | None = None) -> dict[str, Any]:
    """Serve this version now (409 with the reason when the gate does not allow it)."""
    try:
        model_versions.promote(sessions, name, reason=body.reason if body else "",
                               root=settings.data_dir)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except model_versions.Refused as exc:
        raise HTTPException(409, str(exc)) from None
    runtime.current().sync_local()
    return {"serving": name}


@router.post("/rollback", responses=errors(409))
def rollback(sessions: SessionsDep, body: Why | None = None) -> dict[str, Any]:
    """Step one promotion back: serve what served before the current version was promoted
    ("base": the plain base model). Each call steps further back; 409 once the base model serves
    with nothing further back."""
    try:
        back = model_versions.rollback(sessions, reason=body.reason if body else "")
    except model_versions.Refused as exc:
        raise HTTPException(409, str(exc)) from None
    runtime.current().sync_local()
    return {"serving": back.name if back else "base"}
