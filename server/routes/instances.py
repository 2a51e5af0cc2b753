"""Admin API for connected numbers: how the assistant works on each."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from rag.index import COLLECTION_NAME
from server import runtime
from server.deps import ADMIN_ERRORS, SessionDep, SessionsDep, errors, require_admin
from server.schema import Instance
from server.services import instances

router = APIRouter(prefix="/api/instances", tags=["admin"], dependencies=[Depends(require_admin)],
                   responses=ADMIN_ERRORS)


class InstanceOut(BaseModel):
    name: str
    provider: str
    ai_enabled: bool
    kb_collection: str | None
    model: str | None
    fallback_models: list[str] | None
    max_tokens: int | None
    temperature: float | None
    persona: str | None
    budget_daily_usd: float | None
    budget_monthly_usd: float | None


class InstancePatch(BaseModel):
    """Fields to change; a field left out stays as it is, null returns it to the default."""

    model_config = ConfigDict(strict=True)  # `true` is no budget: no coercion from JSON

    ai_enabled: bool | None = None
    kb_collection: str | None = Field(None, pattern=COLLECTION_NAME)
    model: str | None = Field(None, max_length=64)
    fallback_models: list[str] | None = None
    max_tokens: int | None = Field(None, ge=1, le=4096)
    temperature: float | None = Field(None, ge=0, le=2)
    persona: str | None = Field(None, max_length=4000)
    budget_daily_usd: float | None = Field(None, ge=0)
    budget_monthly_usd: float | None = Field(None, ge=0)


def _out(inst: Instance) -> InstanceOut:
    return InstanceOut.model_validate(inst, from_attributes=True)


@router.get("", summary="Connected numbers")
def list_instances(s: SessionDep) -> list[InstanceOut]:
    return [_out(i) for i in s.scalars(select(Instance).order_by(Instance.name))]


@router.patch("/{name}", summary="Change how the assistant works on a number",
              responses=errors(400, 404))
def patch_instance(name: str, patch: InstancePatch, sessions: SessionsDep) -> InstanceOut:
    try:
        inst = instances.update(sessions, name, patch.model_dump(exclude_unset=True),
                                models=set(runtime.current().models))
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return _out(inst)
