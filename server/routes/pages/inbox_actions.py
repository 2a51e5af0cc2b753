"""Pages: what an agent does in a chat (write, attach a file, note, assign, transfer, close,
reopen, take over, give back) and saying whether they take conversations now. Each calls the
service the JSON API calls. A form sent by HTMX gets back the part it replaced (the composer
emptied, or with the error beside the field and the text kept); a plain form, a redirect."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from gateway_bridge.events import storable
from server.deps import ConversationId, PageAgent, SessionsDep, SettingsDep
from server.routes.pages.inbox_view import draw
from server.services import access, canned, desk, handling, media, notes, people, sending
from server.services.contact_data import Invalid
from server.tasks import deliver
from server.web.render import N_

router = APIRouter()
CHANGED = {"HX-Trigger": "thread-changed"}  # the chat re-fetches its history at once
EMPTY = N_("Escreva uma mensagem ou anexe um arquivo.")
TOO_BIG = N_("O arquivo passa do limite de {mb} MB.")
REFUSED = N_("Este arquivo não pode ser enviado: o conteúdo não confere com o tipo dele.")
NOTE = N_("Escreva a nota (até 4000 caracteres).")


def _htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _back(sessions: SessionsDep, who: PageAgent, conversation_id: int) -> RedirectResponse:
    """To the chat, or to the list when the action took it out of the agent's sight (sent to
    another team)."""
    with sessions() as s:
        seen = access.sees_conversation(s, who, conversation_id)
    return RedirectResponse(f"/inbox/{conversation_id}" if seen else "/inbox", 303)


@router.post("/inbox/presence")
def presence(who: PageAgent, request: Request, sessions: SessionsDep,
             online: Annotated[str, Form()] = "") -> Response:
    """Disponível / Ausente: whether the round-robin gives this agent conversations."""
    with sessions.begin() as s:
        now = desk.set_online(s, who, online == "1")
    if _htmx(request):
        return draw(request, "list.html", {"online": now}, who, block="presence")
    return RedirectResponse("/inbox", 303)


@router.post("/inbox/{conversation_id}/send")
async def send(who: PageAgent, conversation_id: ConversationId, request: Request,
               sessions: SessionsDep, settings: SettingsDep,
               text: Annotated[str, Form(max_length=20_000)] = "",
               file: UploadFile | None = None) -> Response:
    limit = settings.media_max_bytes
    upload = None
    if file is not None and file.filename:
        data = await file.read(limit + 1)
        if len(data) > limit:
            return _composer(request, who, conversation_id, text, TOO_BIG, mb=limit // 2**20)
        if data:
            upload = (data, file.content_type or "application/octet-stream", file.filename)
    with sessions() as s:
        text = canned.expand(s, text)
    text = storable(text)  # a NUL is nothing to send (and no text PostgreSQL keeps)
    if not text.strip() and upload is None:
        return _composer(request, who, conversation_id, text, EMPTY)
    try:
        box = await run_in_threadpool(sending.agent_message, sessions, conversation_id,
                                      text=text, file=upload, data_dir=settings.data_dir,
                                      max_bytes=limit, user_id=who.user_id)
    except media.Refused as exc:
        return _composer(request, who, conversation_id, text, REFUSED, detail=str(exc))
    deliver(box)
    await run_in_threadpool(desk.claim, sessions, who, conversation_id)
    if not _htmx(request):
        return RedirectResponse(f"/inbox/{conversation_id}", 303)
    return _composer(request, who, conversation_id, "", None)


def _composer(request: Request, who: PageAgent, conversation_id: int, text: str,
              error: str | None, detail: str = "", **values: object) -> Response:
    if not _htmx(request):  # no script: the chat again, with the error
        return RedirectResponse(f"/inbox/{conversation_id}", 303)
    context = {"head": {"id": conversation_id}, "draft": text, "send_error": error,
               "error_values": values, "error_detail": detail}
    return draw(request, "chat.html", context, who, block="composer",
                headers=None if error else CHANGED)


@router.post("/inbox/{conversation_id}/notes")
def note(who: PageAgent, conversation_id: ConversationId, request: Request,
         sessions: SessionsDep, text: Annotated[str, Form(max_length=20_000)] = "") -> Response:
    try:
        with sessions.begin() as s:
            notes.add(s, who, conversation_id, text)
    except Invalid:
        if _htmx(request):
            return draw(request, "chat.html", {"head": {"id": conversation_id},
                                               "note_draft": text, "note_error": NOTE},
                        who, block="note_form")
        return RedirectResponse(f"/inbox/{conversation_id}", 303)
    if _htmx(request):
        return draw(request, "chat.html", {"head": {"id": conversation_id}}, who,
                    block="note_form", headers=CHANGED)
    return RedirectResponse(f"/inbox/{conversation_id}", 303)


@router.post("/inbox/{conversation_id}/assign")
def assign(who: PageAgent, conversation_id: ConversationId, sessions: SessionsDep,
           user_id: Annotated[int, Form(ge=1, le=2**63 - 1)]) -> Response:
    try:
        with sessions.begin() as s:
            handling.assign(s, conversation_id, user_id)
    except handling.Refused:
        pass  # an agent deactivated meanwhile: the chat shows who still has it
    return _back(sessions, who, conversation_id)


@router.post("/inbox/{conversation_id}/transfer")
def transfer(who: PageAgent, conversation_id: ConversationId, sessions: SessionsDep,
             settings: SettingsDep, team_id: Annotated[int, Form(ge=1, le=2**63 - 1)]
             ) -> Response:
    """To another team's queue; the customer is told, as on any handoff."""
    box = None
    try:
        with sessions.begin() as s:
            team = people.get_team(s, team_id)
            box = handling.hand_off(s, settings, conversation_id, team.name)["notice_box"]
    except LookupError:
        pass  # a team deleted meanwhile: nothing moved, the chat shows where it is
    if box is not None:
        deliver(box)
    return _back(sessions, who, conversation_id)


@router.post("/inbox/{conversation_id}/close")
def close(who: PageAgent, conversation_id: ConversationId, sessions: SessionsDep,
          settings: SettingsDep) -> Response:
    with sessions.begin() as s:
        handling.close(s, settings, conversation_id)
    return _back(sessions, who, conversation_id)


@router.post("/inbox/{conversation_id}/reopen")
def reopen(who: PageAgent, conversation_id: ConversationId, sessions: SessionsDep) -> Response:
    with sessions.begin() as s:
        handling.reopen(s, conversation_id, who.user_id)
    return _back(sessions, who, conversation_id)


@router.post("/inbox/{conversation_id}/take-over")
def take_over(who: PageAgent, conversation_id: ConversationId,
              sessions: SessionsDep) -> Response:
    with sessions.begin() as s:
        desk.take_over(s, who, conversation_id)
    return _back(sessions, who, conversation_id)


@router.post("/inbox/{conversation_id}/give-back")
def give_back(who: PageAgent, conversation_id: ConversationId,
              sessions: SessionsDep) -> Response:
    with sessions.begin() as s:
        desk.give_back(s, conversation_id)
    return _back(sessions, who, conversation_id)
