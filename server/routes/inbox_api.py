"""API for the inbox, the same services its pages use: the conversation list with its filters,
marking a conversation read, internal notes, taking over from the bot and giving back, canned
responses (agents read and use them, managers write them), a message's file, and whether the
caller takes conversations now."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from server.deps import (
    ADMIN_ERRORS,
    ConversationId,
    CurrentPrincipal,
    MessageId,
    RowId,
    SessionsDep,
    SettingsDep,
    errors,
    require,
)
from server.routes.contact_data import answering
from server.schema import Message
from server.services import canned, desk, handling, inbox, media, notes, thread

router = APIRouter(prefix="/api", tags=["inbox"], responses=ADMIN_ERRORS,
                   dependencies=[Depends(require("agent"))])
MANAGER = [Depends(require("manager"))]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class ConversationRow(BaseModel):
    id: int
    contact_id: int
    contact: str
    phone: str | None
    instance: str
    team: str | None
    assignee: str | None
    assignee_id: int | None
    status: str = Field(description="open | queued | assigned | closed")
    mode: str = Field(description="Who answers: ai | flow | human")
    activity: datetime = Field(description="The customer's latest message (else creation)")
    unread: int = Field(description="The customer's messages after what the caller has read")
    last_text: str
    last_author: str | None
    last_status: str | None = Field(description="Delivery of the latest message, if ours")
    cursor: str = Field(description="Pass as `before` for the next page")


class Page(BaseModel):
    conversations: list[ConversationRow]
    next: str | None = Field(description="`before` for the next page; none: the last page")


class NoteIn(Strict):
    text: str = Field(max_length=notes.MAX_TEXT * 2)


class NoteOut(BaseModel):
    id: int
    conversation_id: int
    user_id: int | None
    author: str
    text: str
    created_at: datetime


class CannedIn(Strict):
    shortcut: str = Field(max_length=40, description='One word, like "prazo" or "/prazo"')
    text: str = Field(max_length=canned.MAX_TEXT * 2)


class CannedPatch(Strict):
    shortcut: str | None = Field(None, max_length=40)
    text: str | None = Field(None, max_length=canned.MAX_TEXT * 2)


class CannedOut(BaseModel):
    id: int
    shortcut: str
    text: str
    updated_at: datetime


class Presence(Strict):
    online: bool


TeamOrNone = Annotated[str | None, Query(pattern=r"^(none|[0-9]{1,18})$",
                                         description="A team's id, or none: the common queue")]
AgentOrNone = Annotated[str | None, Query(pattern=r"^(none|me|[0-9]{1,18})$",
                                          description="A user's id, me, or none: unassigned")]


@router.get("/conversations", summary="The conversations the caller may see, latest first")
def conversations(
        who: CurrentPrincipal, sessions: SessionsDep,
        status: Literal["active", "open", "pending", "closed", "all"] = "active",
        team: TeamOrNone = None, agent: AgentOrNone = None,
        instance: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
        tag: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None, unread: bool = False,
        before: str | None = Query(None, max_length=80),
        limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Page:
    filters = inbox.InboxFilter(status=status, team=_id_or_word(team),
                                agent=_id_or_word(agent), instance=instance, tag=tag,
                                unread=unread)
    with sessions() as s:
        rows = inbox.listing(s, who, filters, limit=limit, before=inbox.parse_cursor(before))
    return Page(conversations=[ConversationRow(**vars(r), cursor=r.cursor) for r in rows],
                next=rows[-1].cursor if len(rows) == limit else None)


def _id_or_word(value: str | None) -> int | str | None:
    return int(value) if value is not None and value.isdigit() else value


@router.post("/conversations/{conversation_id}/read", status_code=204, responses=errors(404),
             summary="The caller has read the conversation up to its latest message")
def read(who: CurrentPrincipal, conversation_id: ConversationId,
         sessions: SessionsDep) -> None:
    with sessions.begin() as s:
        thread.mark_read(s, who, conversation_id)


@router.get("/conversations/{conversation_id}/notes", summary="Internal notes (never sent)",
            responses=errors(404))
def note_list(conversation_id: ConversationId, sessions: SessionsDep) -> list[NoteOut]:
    with sessions() as s:
        return [NoteOut.model_validate(n, from_attributes=True)
                for n in notes.of(s, conversation_id)]


@router.post("/conversations/{conversation_id}/notes", status_code=201,
             summary="Write an internal note", responses=errors(404, 422))
def note_add(who: CurrentPrincipal, conversation_id: ConversationId, body: NoteIn,
             sessions: SessionsDep) -> NoteOut:
    with answering(), sessions.begin() as s:
        note = notes.add(s, who, conversation_id, body.text)
        return NoteOut.model_validate(note, from_attributes=True)


@router.post("/conversations/{conversation_id}/take-over", status_code=204,
             summary="Take the conversation from the bot: assigned to the caller",
             responses=errors(404, 409))
def take_over(who: CurrentPrincipal, conversation_id: ConversationId,
              sessions: SessionsDep) -> None:
    with _refusals(), sessions.begin() as s:
        desk.take_over(s, who, conversation_id)


@router.post("/conversations/{conversation_id}/give-back", status_code=204,
             summary="Give the conversation back to the number's flow or assistant",
             responses=errors(404))
def give_back(conversation_id: ConversationId, sessions: SessionsDep) -> None:
    with _refusals(), sessions.begin() as s:
        desk.give_back(s, conversation_id)


@router.get("/messages/{message_id}/media", summary="A message's file, as kept",
            responses=errors(404), response_class=FileResponse)
def message_file(message_id: MessageId, sessions: SessionsDep,
                 settings: SettingsDep) -> FileResponse:
    with sessions() as s:
        msg = s.get(Message, message_id)
        kept = dict(msg.media or {}) if msg is not None else {}
    if kept.get("state") != "stored" or not kept.get("sha256"):
        raise HTTPException(404, f"message {message_id} has no file kept")
    path = media.path_of(settings.data_dir, str(kept["sha256"]))
    if not path.is_file():
        raise HTTPException(404, f"the file of message {message_id} is missing")
    mime = str(kept.get("mime") or "application/octet-stream")
    inline = mime.split("/")[0] in ("image", "audio", "video")
    # Shown in place only when a browser may render it safely; anything else is downloaded.
    return FileResponse(path, media_type=mime, filename=kept.get("filename") or None,
                        content_disposition_type="inline" if inline else "attachment",
                        headers={"X-Content-Type-Options": "nosniff",
                                 "Cache-Control": "private, max-age=86400"})


@router.get("/canned-responses", summary="Canned responses, by shortcut")
def canned_list(sessions: SessionsDep,
                starting: str = Query("", max_length=40)) -> list[CannedOut]:
    with sessions() as s:
        return [CannedOut.model_validate(c, from_attributes=True)
                for c in canned.listing(s, starting)]


@router.post("/canned-responses", status_code=201, dependencies=MANAGER,
             summary="Write a canned response", responses=errors(409, 422))
def canned_create(body: CannedIn, sessions: SessionsDep) -> CannedOut:
    with answering(), sessions.begin() as s:
        return CannedOut.model_validate(canned.create(s, body.shortcut, body.text),
                                        from_attributes=True)


@router.patch("/canned-responses/{canned_id}", dependencies=MANAGER,
              summary="Change a canned response", responses=errors(404, 409, 422))
def canned_update(canned_id: RowId, body: CannedPatch, sessions: SessionsDep) -> CannedOut:
    with answering(), sessions.begin() as s:
        row = canned.update(s, canned_id, body.shortcut, body.text)
        return CannedOut.model_validate(row, from_attributes=True)


@router.delete("/canned-responses/{canned_id}", status_code=204, dependencies=MANAGER,
               summary="Delete a canned response", responses=errors(404))
def canned_delete(canned_id: RowId, sessions: SessionsDep) -> None:
    with answering(), sessions.begin() as s:
        canned.delete(s, canned_id)


@router.put("/presence", summary="Whether the caller takes conversations now (round-robin)",
            responses=errors(409))
def presence(who: CurrentPrincipal, body: Presence, sessions: SessionsDep) -> Presence:
    with _refusals(), sessions.begin() as s:
        return Presence(online=desk.set_online(s, who, body.online))


@contextmanager
def _refusals() -> Iterator[None]:
    """A refused action (a token is no person, an inactive user) 409; unknown 404."""
    try:
        yield
    except (handling.Refused, canned.Conflict) as exc:
        raise HTTPException(409, str(exc)) from None
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
