"""``POST /v1/chat/completions``: the grounded assistant behind OpenAI's wire format.

Callers authenticate with an API token (``atende tokens create``) bound to a knowledge base.
Their system messages are ignored: the persona and rules are the company's, set server-side.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Generator
from dataclasses import replace
from typing import Any, Literal

import anyio
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from models.base import ChatMessage
from server import runtime
from server.deps import SessionsDep, bearer, read_body
from server.services import api_answers, api_tokens, assistant

router = APIRouter(tags=["openai-compatible"])
DEFAULT_NAMES = {"default", "atende"}
# 200 messages of 20,000 characters, as JSON with room for escapes: a larger body is refused
# as it streams in, before it is held.
MAX_BODY = 8_000_000


class MessageIn(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=20_000)


class ChatIn(BaseModel):
    model: str = "default"
    messages: list[MessageIn] = Field(min_length=1, max_length=200)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=2048)
    temperature: float | None = Field(None, ge=0, le=2)


class ErrorOut(BaseModel):
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``."""

    error: dict[str, str | None]


def _body_schema() -> dict[str, Any]:
    """ChatIn's JSON schema with its message schema inlined (OpenAPI has no ``$defs`` here)."""
    schema = ChatIn.model_json_schema()
    schema.pop("$defs", None)
    schema["properties"]["messages"]["items"] = MessageIn.model_json_schema()
    return schema


# The route reads its body itself (to answer bad JSON in OpenAI's error format, not FastAPI's),
# so the request schema is given to OpenAPI by hand.
_OPENAPI = {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": _body_schema()}}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Malformed request"},
    401: {"model": ErrorOut, "description": "Missing, wrong or revoked API token"},
    404: {"model": ErrorOut, "description": "Unknown model"},
    413: {"model": ErrorOut, "description": "Body too large"}}


def _error(status: int, message: str, kind: str = "invalid_request_error",
           code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None,
                                   "code": code}}, status_code=status)


def _chunk(cid: str, model: str, content: str | None, finish: str | None = None) -> str:
    delta = {"content": content} if content is not None else {}
    body = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _token(request: Request, sessions: sessionmaker[Session]) -> Any:
    given = bearer(request.headers.get("authorization", ""))
    return api_tokens.verify(sessions, given) if given else None


def _unauthorized() -> JSONResponse:
    return _error(401, "missing, wrong or revoked API token", "authentication_error",
                  "invalid_api_key")


@router.get("/v1/models", summary="Models a client may name (OpenAI format)",
            responses={401: _ERRORS[401]})
def list_models(request: Request, sessions: SessionsDep) -> Any:
    """What OpenAI clients ask first: "default" (the company's choice) and every configured
    model, each answering from the token's knowledge base."""
    if _token(request, sessions) is None:
        return _unauthorized()
    names = ["default", *runtime.current().models]
    return {"object": "list", "data": [{"id": n, "object": "model", "created": 0,
                                        "owned_by": "atende"} for n in names]}


@router.post("/v1/chat/completions", summary="Grounded chat completion (OpenAI format)",
             openapi_extra=_OPENAPI, responses=_ERRORS)
async def chat_completions(request: Request, sessions: SessionsDep) -> Any:
    """Answer the last user message from the token's knowledge base; ``stream`` sends SSE."""
    token = _token(request, sessions)
    if token is None:
        return _unauthorized()
    try:
        req = ChatIn.model_validate(json.loads(await read_body(request, MAX_BODY)))
    except HTTPException as exc:
        return _error(exc.status_code, str(exc.detail))
    except (ValueError, ValidationError) as exc:
        return _error(400, f"malformed request: {str(exc)[:500]}")
    except RecursionError:
        return _error(400, "malformed request: JSON nested too deeply")
    turns = [m for m in req.messages if m.role != "system"]
    if not turns or turns[-1].role != "user" or not turns[-1].content.strip():
        return _error(400, "the last message must be a non-empty user message")
    rt = runtime.current()
    model = None if req.model in DEFAULT_NAMES else req.model
    if model is not None and model not in rt.models:
        return _error(404, f"the model {req.model!r} does not exist; use one of "
                      f"{sorted(DEFAULT_NAMES | set(rt.models))}", code="model_not_found")
    use = assistant.use_for(rt.settings, collection=token.collection, model=model)
    use = replace(use, max_tokens=req.max_tokens or use.max_tokens,
                  temperature=use.temperature if req.temperature is None else req.temperature)
    history: list[ChatMessage] = [{"role": m.role, "content": m.content} for m in turns[:-1]]
    question = turns[-1].content
    cid = f"chatcmpl-{uuid.uuid4().hex}"
    if req.stream:
        prepared = await run_in_threadpool(assistant.prepare, rt, sessions, question, history,
                                           use)
        return _ClosingStream(_sse(request, cid, api_answers.stream(rt, sessions, prepared)),
                              media_type="text/event-stream")
    ans = await run_in_threadpool(api_answers.answer, rt, sessions, question, history, use)
    c = ans.completion
    return {
        "id": cid, "object": "chat.completion", "created": int(time.time()),
        "model": api_answers.written_by(ans),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ans.text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": c.prompt_tokens if c else 0,
                  "completion_tokens": c.completion_tokens if c else 0,
                  "total_tokens": (c.prompt_tokens + c.completion_tokens) if c else 0},
        "atende": {"passages": ans.passage_ids, "handoff": ans.handoff, "reason": ans.reason},
    }


async def _sse(request: Request, cid: str,
               pieces: Generator[api_answers.Piece, None, None]) -> AsyncIterator[str]:
    """The reply as SSE chunks in OpenAI's format. A client that hangs up is seen before the
    next chunk goes out, or Starlette cancels this on seeing it; the reply is then closed,
    which stops the model and charges what it wrote (``api_answers.stream``). The close is
    shielded: in a cancelled scope any await is cancelled at once, and the reply was left to
    the garbage collector, its model writing on meanwhile."""
    try:
        while (piece := await run_in_threadpool(next, pieces, None)) is not None:
            if await request.is_disconnected():
                return
            yield _chunk(cid, piece.model, piece.text, piece.finish)
        yield "data: [DONE]\n\n"
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(pieces.close)


class _ClosingStream(StreamingResponse):
    """A stream whose body is closed when the response ends, whatever ended it. On a server
    speaking ASGI 2.4, Starlette ends a stream whose send failed and leaves its body to the
    garbage collector, the local model locked until then (uvicorn speaks 2.3: ``_sse``'s own
    close serves it)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()  # type: ignore[attr-defined]
