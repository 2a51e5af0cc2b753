"""``GET /health``: is each part up, said plainly."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from server import runtime
from server.deps import SessionsDep

router = APIRouter(tags=["health"])


def _check(sessions: sessionmaker[Session]) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    try:
        with sessions() as s:
            s.execute(text("SELECT 1"))
            dialect = s.get_bind().dialect.name
        parts["database"] = {"ok": True, "dialect": dialect}
    except Exception as exc:  # health reports every failure instead of raising it
        parts["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        rt = runtime.current()
        names = [c.name for c in rt.kb.client.get_collections().collections]
        parts["vector_store"] = {"ok": True, "collections": names,
                                 "embedder": rt.kb.embedder.name}
        rt.sync_local()
        local = rt.models[runtime.LOCAL][0]
        parts["model"] = {"ok": rt.llm.count_tokens("ping") > 0, "name": rt.llm.name,
                          "configured": {n: spec.provider for n, (spec, _) in rt.models.items()},
                          "local_adapter": local.lora_path.name if local.lora_path else None}
    except Exception as exc:
        parts.setdefault("vector_store", {"ok": False, "error": type(exc).__name__})
        parts["model"] = {"ok": False, "error": type(exc).__name__}
    return parts


@router.get("/health", summary="Database, vector store and model status",
            responses={503: {"description": "A part is down: the body says which"}})
async def health(sessions: SessionsDep) -> JSONResponse:
    parts = await run_in_threadpool(_check, sessions)
    ok = all(p["ok"] for p in parts.values())
    return JSONResponse({"status": "ok" if ok else "degraded", **parts},
                        status_code=200 if ok else 503)
