"""API: a conversation's messages and the journey of each (agents and up, their teams' only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel
from sqlalchemy import select

from server.deps import ADMIN_ERRORS, ConversationId, MessageId, SessionDep, errors, require
from server.schema import Message
from server.services import journey

router = APIRouter(prefix="/api", tags=["admin"], dependencies=[Depends(require("agent"))],
                   responses=ADMIN_ERRORS)


class Step(BaseModel):
    event: str
    at: datetime
    detail: dict[str, Any] | None


class MessageOut(BaseModel):
    id: int
    conversation_id: int
    direction: str
    author: str
    text: str
    type: str
    transcript: str | None = None  # a voice note's words, as transcribed
    status: str
    provider_message_id: str | None
    reply_to_id: int | None
    grounding: list[str] | None
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    created_at: datetime
    journey: list[Step] = []


def _out(m: Message, steps: list[Step] | None = None) -> MessageOut:
    return MessageOut.model_validate({**{c: getattr(m, c) for c in MessageOut.model_fields
                                         if c != "journey"}, "journey": steps or []})


@router.get("/conversations/{conversation_id}/messages", summary="Messages of a conversation")
def conversation_messages(conversation_id: ConversationId,
                          s: SessionDep) -> list[MessageOut]:
    rows = s.scalars(select(Message).where(Message.conversation_id == conversation_id)
                     .order_by(Message.id))
    return [_out(m) for m in rows]


@router.get("/messages/{message_id}", summary="A message with its journey",
            responses=errors(404))
def message(message_id: MessageId, s: SessionDep) -> MessageOut:
    m = s.get(Message, message_id)
    if m is None:
        raise HTTPException(404, f"no message {message_id}")
    steps = [Step(event=e.event, at=e.at, detail=e.detail) for e in journey.of(s, m.id)]
    return _out(m, steps)

