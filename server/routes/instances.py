"""Admin API for connected numbers: the gateway each is reached through, and how the assistant
works on it. Credentials go in and never come out: responses say only whether one is set."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from rag.index import COLLECTION_NAME
from server import runtime
from server.deps import ADMIN_ERRORS, SessionDep, SessionsDep, SettingsDep, errors, require_admin
from server.schema import Instance
from server.services import connection, flow_store, instances

router = APIRouter(prefix="/api/instances", tags=["admin"], dependencies=[Depends(require_admin)],
                   responses=ADMIN_ERRORS)
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
FLOW_KEY = r"^[A-Za-z0-9_-]{1,64}$"


class Connection(BaseModel):
    state: str = Field(description="connected, disconnected, pairing or unknown")
    detail: str | None = Field(description="The gateway's own word, or why we think so")
    since: datetime | None
    checked_at: datetime | None = Field(description="When the gateway was last asked")


class InstanceOut(BaseModel):
    name: str
    provider: str
    api_url: str | None
    has_api_key: bool
    has_verify_token: bool
    options: dict[str, Any]
    webhook_url: str = Field(description="Where the gateway posts; for Evolution the secret "
                             "token is shown once, at creation or rotation")
    connection: Connection
    alert: str | None = Field(description="What needs a person's attention on this number")
    send_interval_s: float
    daily_cap: int
    sent_today: int
    ai_enabled: bool
    kb_collection: str | None
    model: str | None
    fallback_models: list[str] | None
    max_tokens: int | None
    temperature: float | None
    persona: str | None
    budget_daily_usd: float | None
    budget_monthly_usd: float | None
    default_flow: str | None = Field(description="The flow a message no keyword picks "
                                     "starts; none: the assistant answers (AI mode)")


class InstanceCreated(InstanceOut):
    webhook_secret: str | None = Field(description="Made for you when you gave none: shown "
                                       "this once (WAHA's HMAC key; Evolution's URL token)")


class GatewayFields(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    api_url: str | None = Field(None, max_length=512, pattern=r"^https?://")
    api_key: str | None = Field(None, min_length=1, max_length=400)
    webhook_secret: str | None = Field(None, min_length=8, max_length=400,
                                       description="WAHA's HMAC key; the Cloud app secret")
    verify_token: str | None = Field(None, min_length=1, max_length=400)
    options: dict[str, str] | None = Field(
        None, description="evolution: instance; waha: session; cloud: phone_number_id, "
        "api_version")
    send_interval_s: float | None = Field(None, ge=0, le=3600,
                                          description="Seconds between sends, with jitter")
    daily_cap: int | None = Field(None, ge=1, le=1_000_000)


class InstanceIn(GatewayFields):
    name: str = Field(pattern=NAME)
    provider: Literal["evolution", "waha", "cloud"]
    ai_enabled: bool = True
    kb_collection: str | None = Field(None, pattern=COLLECTION_NAME)
    default_flow: str | None = Field(None, pattern=FLOW_KEY, description="A stored flow's key")


class InstancePatch(GatewayFields):
    """Fields to change; a field left out stays as it is, null returns it to the default."""

    ai_enabled: bool | None = None
    kb_collection: str | None = Field(None, pattern=COLLECTION_NAME)
    model: str | None = Field(None, max_length=64)
    fallback_models: list[str] | None = None
    max_tokens: int | None = Field(None, ge=1, le=4096)
    temperature: float | None = Field(None, ge=0, le=2)
    persona: str | None = Field(None, max_length=4000)
    budget_daily_usd: float | None = Field(None, ge=0)
    budget_monthly_usd: float | None = Field(None, ge=0)
    default_flow: str | None = Field(None, pattern=FLOW_KEY,
                                     description="A stored flow's key; null: AI mode")


def _base(request: Request, settings: SettingsDep) -> str:
    return (settings.public_url or str(request.base_url)).rstrip("/")


def _out(inst: Instance, base: str, token: str | None = None) -> dict[str, Any]:
    url = f"{base}/webhooks/{inst.provider}/{inst.name}"
    if inst.provider == "evolution":
        url += f"?token={token or '<webhook_secret>'}"
    return {
        **{k: getattr(inst, k) for k in InstanceOut.model_fields
           if hasattr(inst, k) and k not in ("options", "connection")},
        "options": inst.options or {},
        "has_api_key": bool(inst.api_key), "has_verify_token": bool(inst.verify_token),
        "webhook_url": url,
        "connection": Connection(state=inst.connection_state, detail=inst.connection_detail,
                                 since=inst.connection_since,
                                 checked_at=inst.connection_checked_at),
        "alert": connection.alert(inst),
    }


@router.get("", summary="Connected numbers")
def list_instances(s: SessionDep, request: Request, settings: SettingsDep) -> list[InstanceOut]:
    base = _base(request, settings)
    return [InstanceOut(**_out(i, base)) for i in instances.live(s)]


@router.post("", summary="Connect a number", status_code=201, responses=errors(400, 409))
def create_instance(body: InstanceIn, sessions: SessionsDep, request: Request,
                    settings: SettingsDep) -> InstanceCreated:
    try:
        made = instances.create(sessions, body.model_dump())
    except flow_store.UnknownFlow as exc:
        raise HTTPException(409, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(409 if "exists" in str(exc) else 400, str(exc)) from None
    return InstanceCreated(**_out(made.instance, _base(request, settings), made.webhook_secret),
                           webhook_secret=made.webhook_secret)


@router.get("/{name}", summary="One number", responses=errors(404))
def get_instance(name: str, s: SessionDep, request: Request,
                 settings: SettingsDep) -> InstanceOut:
    return InstanceOut(**_out(_found(s, name), _base(request, settings)))


@router.patch("/{name}", summary="Change a number's gateway or how the assistant works on it",
              responses=errors(400, 404, 409))
def patch_instance(name: str, patch: InstancePatch, sessions: SessionsDep, request: Request,
                   settings: SettingsDep) -> InstanceOut:
    try:
        inst = instances.update(sessions, name, patch.model_dump(exclude_unset=True),
                                models=set(runtime.current().models))
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except flow_store.UnknownFlow as exc:
        raise HTTPException(409, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return InstanceOut(**_out(inst, _base(request, settings)))


@router.delete("/{name}", summary="Remove a number (its conversations stay)", status_code=204,
               responses=errors(404))
def delete_instance(name: str, sessions: SessionsDep) -> Response:
    try:
        instances.remove(sessions, name)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(status_code=204)


@router.post("/{name}/webhook-secret", summary="Make a new webhook secret, shown once",
             responses=errors(404))
def rotate_webhook_secret(name: str, sessions: SessionsDep, request: Request,
                          settings: SettingsDep) -> InstanceCreated:
    try:
        inst, fresh = instances.rotate_secret(sessions, name)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    return InstanceCreated(**_out(inst, _base(request, settings), fresh), webhook_secret=fresh)


def _found(s: SessionDep, name: str) -> Instance:
    try:
        return instances.get(s, name)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
