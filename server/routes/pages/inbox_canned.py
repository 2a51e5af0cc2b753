"""Pages: canned responses. Agents see them and pick one while writing (typing "/" suggests
them; a message that is only "/prazo" is sent as its text); managers write, change and delete
them here. The same service answers ``/api/canned-responses``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.deps import PageAgent, PageManager, RowId, SessionsDep
from server.routes.pages.inbox_view import draw
from server.services import canned
from server.web.render import N_

router = APIRouter()
SHORTCUT = N_("Use uma palavra, como /prazo (letras, números, - ou _).")
TAKEN = N_("Esse atalho já existe.")
TEXT = N_("Escreva o texto da resposta (até 4096 caracteres).")


def _listing(request: Request, who: PageAgent, sessions: SessionsDep,
             extra: dict[str, Any] | None = None, status: int = 200) -> HTMLResponse:
    with sessions() as s:
        rows = canned.listing(s)
        context = {"rows": rows, "errors": {}, "form": {}, "editing": None, **(extra or {})}
        answer = draw(request, "canned.html", context, who)
    answer.status_code = status
    return answer


@router.get("/inbox/canned", response_class=HTMLResponse)
def canned_page(who: PageAgent, request: Request, sessions: SessionsDep,
                edit: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None) -> HTMLResponse:
    return _listing(request, who, sessions, {"editing": edit})


@router.get("/inbox/canned/suggest", response_class=HTMLResponse)
def suggest(who: PageAgent, request: Request, sessions: SessionsDep,
            text: Annotated[str, Query(max_length=20_000)] = "") -> HTMLResponse:
    """The canned responses whose shortcut starts with what is typed after a "/"."""
    word = text.strip()
    with sessions() as s:
        rows = canned.listing(s, word) if word.startswith("/") and " " not in word else []
        return draw(request, "chat.html", {"suggestions": rows[:8]}, who, block="suggestions",
                    partial=True)  # the list alone, whoever asks: it has no page


@router.post("/inbox/canned")
def create(who: PageManager, request: Request, sessions: SessionsDep,
           shortcut: Annotated[str, Form(max_length=200)] = "",
           text: Annotated[str, Form(max_length=20_000)] = "") -> Response:
    return _save(request, who, sessions, None, shortcut, text)


@router.post("/inbox/canned/{canned_id}")
def change(who: PageManager, canned_id: RowId, request: Request, sessions: SessionsDep,
           shortcut: Annotated[str, Form(max_length=200)] = "",
           text: Annotated[str, Form(max_length=20_000)] = "") -> Response:
    return _save(request, who, sessions, canned_id, shortcut, text)


def _save(request: Request, who: PageManager, sessions: SessionsDep, canned_id: int | None,
          shortcut: str, text: str) -> Response:
    try:
        with sessions.begin() as s:
            if canned_id is None:
                canned.create(s, shortcut, text)
            else:
                canned.update(s, canned_id, shortcut, text)
    except canned.Invalid as exc:
        why = TAKEN if isinstance(exc, canned.Conflict) else (
            SHORTCUT if exc.field == "shortcut" else TEXT)
        return _listing(request, who, sessions, {
            "errors": {exc.field or "text": why}, "editing": canned_id,
            "form": {"shortcut": shortcut, "text": text}}, status=400)
    except LookupError:
        pass  # deleted meanwhile: the list shows what there is
    return RedirectResponse("/inbox/canned", 303)


@router.post("/inbox/canned/{canned_id}/delete")
def remove(who: PageManager, canned_id: RowId, sessions: SessionsDep) -> Response:
    try:
        with sessions.begin() as s:
            canned.delete(s, canned_id)
    except LookupError:
        pass
    return RedirectResponse("/inbox/canned", 303)
