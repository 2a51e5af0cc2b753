"""API for working a conversation (agents and up, in the conversations they may see): hand it
to a team, assign it, close and reopen it, and see its session (the flow's stage and
variables). Writing to it is in routes/gateway.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from server.deps import ADMIN_ERRORS, ConversationId, SessionsDep, SettingsDep, errors, require
from server.services import chat_sessions, handling
from server.tasks import deliver

router = APIRouter(prefix="/api/conversations", tags=["admin"],
                   dependencies=[Depends(require("agent"))], responses=ADMIN_ERRORS)


class HandOff(BaseModel):
    team: str | None = Field(None, max_length=64, description="A team's name; none: the only "
                             "team, or any agent")


class Assign(BaseModel):
    user_id: int = Field(ge=1, le=2**63 - 1)


class Reopen(BaseModel):
    user_id: int | None = Field(None, ge=1, le=2**63 - 1)


@router.post("/{conversation_id}/handoff", summary="Hand the conversation to a team's queue",
             responses=errors(404, 409))
def hand_off(conversation_id: ConversationId, body: HandOff, sessions: SessionsDep,
             settings: SettingsDep) -> dict[str, Any]:
    with _refusals(), sessions.begin() as s:
        out = handling.hand_off(s, settings, conversation_id, body.team)
    if out["notice_box"] is not None:
        deliver(out["notice_box"])
    return out


@router.post("/{conversation_id}/assign", status_code=204, responses=errors(404, 409))
def assign(conversation_id: ConversationId, body: Assign, sessions: SessionsDep) -> None:
    with _refusals(), sessions.begin() as s:
        handling.assign(s, conversation_id, body.user_id)


@router.post("/{conversation_id}/close", status_code=204,
             summary="Resolve: the session ends, the next message starts over",
             responses=errors(404))
def close(conversation_id: ConversationId, sessions: SessionsDep,
          settings: SettingsDep) -> None:
    with _refusals(), sessions.begin() as s:
        handling.close(s, settings, conversation_id)


@router.post("/{conversation_id}/reopen", status_code=204,
             summary="Give it back to a person, with no handoff and nothing sent",
             responses=errors(404, 409))
def reopen(conversation_id: ConversationId, body: Reopen, sessions: SessionsDep) -> None:
    with _refusals(), sessions.begin() as s:
        handling.reopen(s, conversation_id, body.user_id)


@router.get("/{conversation_id}/session", summary="The open session: flow, stage, variables",
            responses=errors(404))
def session(conversation_id: ConversationId, sessions: SessionsDep) -> dict[str, Any]:
    with _refusals(), sessions() as s:
        conv = handling.conversation(s, conversation_id)
        sess = chat_sessions.open_session(s, conv)
        return {"mode": conv.mode, "status": conv.status, "team_id": conv.team_id,
                "assignee_id": conv.assignee_id,
                "session": None if sess is None else chat_sessions.describe(sess)}


@contextmanager
def _refusals() -> Iterator[None]:
    """Service refusals as HTTP: an unknown conversation 404, a refused action 409."""
    try:
        yield
    except handling.Refused as exc:
        raise HTTPException(409, str(exc)) from None
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
