"""Admin API for knowledge bases: upload, list and delete documents; how each is answered."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from rag.index import COLLECTION_NAME, EmbedderMismatch
from rag.parsing import MAX_BYTES, DocumentError, parse
from server import runtime
from server.deps import ADMIN_ERRORS, Problem, SessionsDep, errors, require_admin
from server.services import answer_modes

Collection = Annotated[str, Path(pattern=COLLECTION_NAME, description="Knowledge base name")]
router = APIRouter(prefix="/api/kb", tags=["knowledge base"],
                   dependencies=[Depends(require_admin)], responses=ADMIN_ERRORS)


class IngestOut(BaseModel):
    doc: str
    status: str  # added | replaced | unchanged | error
    chunks: int = 0
    error: str | None = None


def _ingest(collection: str, name: str, data: bytes) -> IngestOut:
    try:
        res = runtime.current().kb.ingest(collection, name, parse(data, name))
    except (DocumentError, EmbedderMismatch) as exc:
        return IngestOut(doc=name, status="error", error=str(exc))
    return IngestOut(doc=name, status=res.status, chunks=res.chunks)


@router.get("", summary="Knowledge bases with their documents' counts")
def collections() -> dict[str, dict[str, int]]:
    kb = runtime.current().kb
    return {c.name: kb.documents(c.name) for c in kb.client.get_collections().collections}


@router.get("/{collection}/documents", summary="Documents of a knowledge base")
def documents(collection: Collection) -> dict[str, int]:
    return runtime.current().kb.documents(collection)


@router.post("/{collection}/documents", summary="Upload documents (md, txt, html, pdf, docx)",
             response_model=list[IngestOut], responses={422: {
                 "model": list[IngestOut] | Problem,
                 "description": "A file failed (each file's result says which and why), or "
                                "the request is malformed"}})
async def upload(collection: Collection, files: list[UploadFile]) -> JSONResponse:
    """Add or replace each file; one that fails says why and leaves the rest, and the base, as
    they were. 200 when all went in, 422 when any failed."""
    results = []
    for f in files:
        data = await f.read(MAX_BYTES + 1)
        name = (f.filename or "sem-nome").replace("/", "_").replace("\\", "_")
        results.append(await run_in_threadpool(_ingest, collection, name, data))
    failed = any(r.status == "error" for r in results)
    return JSONResponse([r.model_dump() for r in results], status_code=422 if failed else 200)


@router.delete("/{collection}/documents/{doc}", summary="Delete a document and its passages",
               responses=errors(404))
def delete(collection: Collection, doc: str) -> dict[str, int]:
    removed = runtime.current().kb.delete(collection, doc)
    if not removed:
        raise HTTPException(404, f"no document {doc!r} in {collection!r}")
    return {"removed_passages": removed}


class PassageOut(BaseModel):
    id: str
    doc: str
    heading: str
    position: int
    text: str


@router.get("/{collection}/passages/{passage_id}", summary="A knowledge-base passage",
            responses=errors(404))
def passage(collection: Collection, passage_id: str) -> PassageOut:
    """A passage by id, as a reply cites it."""
    try:
        found = runtime.current().kb.passages(collection, [passage_id])
    except ValueError:  # not a valid point id
        found = []
    if not found:
        raise HTTPException(404, f"no passage {passage_id} in {collection!r}")
    p = found[0]
    return PassageOut(id=p.id, doc=p.doc, heading=p.heading, position=p.position, text=p.text)


@router.get("/{collection}/answer-mode", summary="How a knowledge base is answered, and why")
def answer_mode(collection: Collection, sessions: SessionsDep) -> dict[str, Any]:
    """The answer mode (model, extraction, model+extraction or model-checked) the gate chose
    for this knowledge base (`atende models compare`), its reason, the version it was measured
    with and each mode's verdict; the shipped default, said so, where no gate has judged it."""
    return answer_modes.current(sessions, collection).as_dict()
