"""API for flows (managers and up): a manager imports one as YAML (or edits its JSON dict
form), gets it back the same way, switches it on and off, and removes it. What is wrong with a
flow comes back as a 422 listing each problem with the path of the bad part
(``nodes.menu.options[2].next``), so an editor can point at it; ``/validate`` answers the same
without keeping anything."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

import flows
from server.deps import (
    ADMIN_ERRORS,
    Problem,
    SessionDep,
    SessionsDep,
    errors,
    read_body,
    require,
)
from server.schema import StoredFlow
from server.services import flow_store

router = APIRouter(prefix="/api/flows", tags=["admin"],
                   dependencies=[Depends(require("manager"))], responses=ADMIN_ERRORS)
MAX_BODY = 1_000_000  # a flow of hundreds of nodes is a few tens of kB
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml",
                        "text/plain", ""})
JSON_TYPES = frozenset({"application/json"})
_UNSUPPORTED: dict[int | str, dict[str, Any]] = {
    415: {"model": Problem, "description": "Not a content type this route reads"}}
_REFUSED: dict[int | str, dict[str, Any]] = {
    **errors(413), 422: {"model": Problem, "description": "The flow's problems: "
                         "[{path, problem}], or why the body could not be read"}}


_YAML = {"application/yaml": {"schema": {"type": "string"}, "example": (
    "id: boas-vindas\nstart: oi\nnodes:\n  oi:\n    kind: end\n    text: Olá!\n")}}
_JSON = {"application/json": {"schema": {"type": "object"}}}
_YAML_BODY = {"requestBody": {"required": True, "content": _YAML}}
_JSON_BODY = {"requestBody": {"required": True, "content": _JSON}}
_EITHER_BODY = {"requestBody": {"required": True, "content": {**_YAML, **_JSON}}}


class FlowSummary(BaseModel):
    key: str = Field(description="The flow's own id")
    name: str
    enabled: bool
    version: int = Field(description="1 when first stored, one more at each replacement")
    updated_at: datetime
    nodes: int = Field(description="How many nodes it has")
    triggers: list[str] = Field(description="Keywords that start it")


class FlowPatch(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    enabled: bool = Field(description="Off: no keyword or number starts it; running sessions "
                          "finish as they are")


class Checked(BaseModel):
    valid: bool
    problems: list[dict[str, str]] = Field(description="[{path, problem}]; empty when valid")


def _summary(row: StoredFlow) -> FlowSummary:
    return FlowSummary(key=row.key, name=row.name, enabled=row.enabled, version=row.version,
                       updated_at=row.updated_at, nodes=len(row.definition.get("nodes") or {}),
                       triggers=list(row.definition.get("triggers") or []))


def _refuse(exc: flows.FlowError) -> HTTPException:
    return HTTPException(422, flow_store.problem_list(exc))


async def _read(request: Request, accepted: frozenset[str]) -> tuple[str, str]:
    """The body as text, and "yaml" or "json" as its content type says; 415 for another."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in accepted:
        raise HTTPException(415, f"send the flow as one of: {', '.join(sorted(accepted - {''}))}")
    raw = await read_body(request, MAX_BODY)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(422, [{"path": "body", "problem": "is not UTF-8 text"}]) from None
    return text, "json" if kind in JSON_TYPES else "yaml"


async def yaml_body(request: Request) -> tuple[str, str]:
    return await _read(request, YAML_TYPES)


async def json_body(request: Request) -> tuple[str, str]:
    return await _read(request, JSON_TYPES)


async def any_body(request: Request) -> tuple[str, str]:
    return await _read(request, YAML_TYPES | JSON_TYPES)


AnyBody = Annotated[tuple[str, str], Depends(any_body)]


def _parse(body: tuple[str, str]) -> flows.Flow:
    text, kind = body
    try:
        return flow_store.parse_json(text) if kind == "json" else flow_store.parse_yaml(text)
    except flows.FlowError as exc:
        raise _refuse(exc) from None


def _store(sessions: SessionsDep, flow: flows.Flow, response: Response) -> FlowSummary:
    try:
        with sessions.begin() as s:
            created = flow_store.get(s, flow.id) is None
            row = flow_store.save(s, flow)
            out = _summary(row)
    except flows.FlowError as exc:
        raise _refuse(exc) from None
    except IntegrityError:  # stored by a concurrent request between our look and our insert
        raise HTTPException(409, f"flow {flow.id!r} was stored meanwhile: send it again") from None
    response.status_code = 201 if created else 200
    return out


@router.get("", summary="Stored flows")
def list_flows(s: SessionDep) -> list[FlowSummary]:
    return [_summary(row) for row in flow_store.listing(s)]


@router.post("/import", summary="Store a flow from YAML (new, or replacing the one with its id)",
             status_code=201, openapi_extra=_YAML_BODY,
             responses={**_REFUSED, **_UNSUPPORTED, **errors(409),
                        200: {"model": FlowSummary, "description": "Replaced"}})
def import_flow(body: Annotated[tuple[str, str], Depends(yaml_body)], sessions: SessionsDep,
                response: Response) -> FlowSummary:
    return _store(sessions, _parse(body), response)


@router.post("/validate", summary="What is wrong with a flow (YAML or JSON); nothing is stored",
             openapi_extra=_EITHER_BODY, responses={**errors(413), **_UNSUPPORTED})
def validate_flow(body: AnyBody, s: SessionDep) -> Checked:
    """A flow that cannot even be read (bad YAML, an unknown key) is answered here too, as a
    problem: asking is not a malformed request."""
    text, kind = body
    try:
        flow = flow_store.parse_json(text) if kind == "json" else flow_store.parse_yaml(text)
    except flows.FlowError as exc:
        return Checked(valid=False, problems=flow_store.problem_list(exc))
    found = flow_store.problems(s, flow)
    return Checked(valid=not found, problems=flow_store.problem_list(flows.FlowError(found)))


@router.get("/{key}", summary="One flow, in its JSON dict form (what PUT takes)",
            responses=errors(404))
def get_flow(key: str, s: SessionDep) -> dict[str, Any]:
    return _found(s, key).definition


@router.put("/{key}", summary="Store a flow from its JSON dict form", status_code=201,
            openapi_extra=_JSON_BODY,
            responses={**_REFUSED, **_UNSUPPORTED, **errors(409),
                       200: {"model": FlowSummary, "description": "Replaced"}})
def put_flow(key: str, body: Annotated[tuple[str, str], Depends(json_body)],
             sessions: SessionsDep, response: Response) -> FlowSummary:
    flow = _parse(body)
    if flow.id != key:
        raise HTTPException(422, [{"path": "id", "problem": f"is {flow.id!r}, but the address "
                                   f"names {key!r}: they must be the same"}])
    return _store(sessions, flow, response)


@router.get("/{key}/export", summary="One flow as YAML, to edit and import again",
            response_class=Response, responses={
                **errors(404), 200: {"content": {"application/yaml": {}},
                                     "description": "The flow, defaults left out"}})
def export_flow(key: str, s: SessionDep) -> Response:
    row = _found(s, key)
    return Response(flows.to_yaml(flows.from_dict(row.definition)),
                    media_type="application/yaml",
                    headers={"Content-Disposition": f'attachment; filename="{row.key}.yaml"'})


@router.patch("/{key}", summary="Switch a flow on or off",
              responses={**errors(404), **_REFUSED})
def patch_flow(key: str, patch: FlowPatch, sessions: SessionsDep) -> FlowSummary:
    """Switching on checks the flow again against today's custom fields and team hours."""
    try:
        with sessions.begin() as s:
            return _summary(flow_store.set_enabled(s, key, patch.enabled))
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except flows.FlowError as exc:
        raise _refuse(exc) from None


@router.delete("/{key}", summary="Remove a flow (not while a number starts it by default)",
               status_code=204, responses=errors(404, 409))
def delete_flow(key: str, sessions: SessionsDep) -> Response:
    try:
        with sessions.begin() as s:
            flow_store.delete(s, key)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except flow_store.FlowInUse as exc:
        raise HTTPException(409, str(exc)) from None
    return Response(status_code=204)


def _found(s: SessionDep, key: str) -> StoredFlow:
    row = flow_store.get(s, key)
    if row is None:
        raise HTTPException(404, f"no flow {key!r}")
    return row
