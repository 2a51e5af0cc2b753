"""API for the contact list: the filter, one contact (read and change), CSV import and export,
and merging duplicates. Agents list and change the contacts they may see; managers import,
export and merge. The filter's parameters are the contact page's form's
(``server.services.contact_search.from_params``); a refusal is a 422 naming each parameter,
field or CSV column at fault."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from server.deps import ContactId, CurrentPrincipal, SessionsDep, errors, require
from server.services import access, contact_card, contact_csv, contact_search, merge
from server.services.contact_checks import Refused

router = APIRouter(prefix="/api/contacts", tags=["contacts"], responses=errors(401, 403))
AGENT = [Depends(require("agent"))]
MANAGER = [Depends(require("manager"))]


@contextmanager
def answering(where: str = "body") -> Iterator[None]:
    """A refusal as a 422 naming each thing at fault; an unknown contact as a 404."""
    try:
        yield
    except Refused as exc:
        raise HTTPException(422, [{"loc": [where, k], "msg": str(why), "type": "value_error"}
                                  for k, why in exc.problems.items()]) from None
    except LookupError as exc:
        if isinstance(exc, KeyError):
            raise
        raise HTTPException(404, str(exc)) from None


class ContactRow(BaseModel):
    id: int
    name: str | None
    phone: str | None
    tags: list[str]
    last_inbound_at: datetime | None = Field(description="The customer's last message")
    open: bool = Field(description="Has a conversation not closed")


class ContactList(BaseModel):
    total: int = Field(description="Every contact the filter finds")
    next_after: int | None = Field(description="Pass as `after` for the next page")
    contacts: list[ContactRow]


class Thread(BaseModel):
    id: int
    instance: str
    status: str
    team: str | None
    last_inbound_at: datetime | None


class HistoryLine(BaseModel):
    id: int
    at: datetime
    direction: str
    author: str = Field(description="customer, assistant, agent, flow or system")
    text: str
    type: str
    instance: str


class ContactOut(BaseModel):
    id: int
    name: str | None
    phone: str | None
    created_at: datetime
    identities: list[tuple[str, str]] = Field(description="(kind, value): phone, lid, address")
    conversations: list[Thread]
    tags: list[str]
    fields: dict[str, str]
    history: list[HistoryLine] = Field(description="The last 100 messages, newest last")
    older: bool = Field(description="There are messages before these")


class ContactPatch(BaseModel):
    """What to change; what is left out stays."""

    model_config = ConfigDict(strict=True, extra="forbid")
    name: str | None = Field(None, max_length=200)
    tags: list[str] | None = Field(None, max_length=100, description="Exactly these tags")
    fields: dict[str, str | None] | None = Field(
        None, max_length=200, description='Values by field key; "" or null clears one')


class ImportReport(BaseModel):
    created: int
    updated: int = Field(description="Rows that found a contact by its phone")
    rejected: list[dict[str, str | int]] = Field(description="{line, column, reason}")


class MergeIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    other: int = Field(ge=1, le=2**63 - 1, description="The contact merged in, then gone")


class MergeOut(BaseModel):
    contact: int
    merged: int
    detail: dict[str, object] = Field(description="What moved, and the values not kept")


class Duplicate(BaseModel):
    id: int
    name: str | None
    phone: str | None
    reason: str


FILTER_DOC = ("q: name or phone; tag (repeat) with tag_mode any|all|none; field, op "
              "(eq|contains|gt|lt|set|unset), value, repeated in step; instance; last_from, "
              "last_to (aaaa-mm-dd); open 1|0")


def _filter(request: Request) -> contact_search.ContactFilter:
    params = {k: request.query_params.getlist(k) for k in request.query_params}
    with answering("query"):
        return contact_search.from_params(params)


Filter = Annotated[contact_search.ContactFilter, Depends(_filter)]


@router.get("", summary="Contacts, filtered, newest first, 50 a page", description=FILTER_DOC,
            responses=errors(422), dependencies=AGENT)
def list_contacts(f: Filter, who: CurrentPrincipal, sessions: SessionsDep,
                  after: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
                  limit: Annotated[int, Query(ge=1, le=200)] = 50) -> ContactList:
    with answering("query"), sessions() as s:
        page = contact_search.search(s, who, f, limit=limit, after=after)
    return ContactList(total=page.total, next_after=page.next_after,
                       contacts=[ContactRow(**vars(r)) for r in page.rows])


@router.get("/export", summary="The filtered list as CSV (;-separated, UTF-8)",
            description=FILTER_DOC, responses=errors(422), dependencies=MANAGER)
def export_contacts(f: Filter, who: CurrentPrincipal, sessions: SessionsDep) -> StreamingResponse:
    with answering("query"), sessions() as s:
        contact_search.where(s, who, f)  # a refused filter is a 422 before the first byte
    return StreamingResponse(
        contact_csv.export_csv(sessions, who, f), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="contatos.csv"'})


@router.post("/import", summary="Import contacts from CSV: a report of each row refused",
             responses=errors(422), dependencies=MANAGER)
def import_contacts(file: Annotated[UploadFile, File(description="nome;telefone;etiquetas;"
                                                     "<field keys>")],
                    who: CurrentPrincipal, sessions: SessionsDep) -> ImportReport:
    data = file.file.read(contact_csv.MAX_BYTES + 1)
    with answering():
        report = contact_csv.import_csv(sessions, who, data)
    return ImportReport(created=report.created, updated=report.updated, rejected=[
        {"line": r.line, "column": r.column, "reason": str(r.why)} for r in report.rejected])


@router.get("/{contact_id}", summary="A contact: identities, conversations, tags, fields, "
            "history", responses=errors(404), dependencies=AGENT)
def get_contact(contact_id: ContactId, who: CurrentPrincipal,
                sessions: SessionsDep) -> ContactOut:
    with answering(), sessions() as s:
        card = contact_card.card(s, who, contact_id)
        lines, older = contact_card.history(s, who, contact_id)
    return ContactOut(id=card.id, name=card.name, phone=card.phone, created_at=card.created_at,
                      identities=card.identities, tags=card.tags, fields=card.fields,
                      conversations=[Thread(**vars(t)) for t in card.threads],
                      history=[HistoryLine(**vars(x)) for x in lines], older=older)


@router.patch("/{contact_id}", summary="Change a contact's name, tags or fields, all or none",
              responses=errors(404, 422), dependencies=AGENT)
def patch_contact(contact_id: ContactId, body: ContactPatch, who: CurrentPrincipal,
                  sessions: SessionsDep) -> ContactOut:
    with answering(), sessions.begin() as s:
        contact_card.update(s, contact_id, name=body.name, tags=body.tags, fields=None if (
            body.fields is None) else {k: v or "" for k, v in body.fields.items()})
    return get_contact(contact_id, who, sessions)


@router.get("/{contact_id}/duplicates", summary="Contacts that may be this one too",
            responses=errors(404), dependencies=MANAGER)
def contact_duplicates(contact_id: ContactId, who: CurrentPrincipal,
                       sessions: SessionsDep) -> list[Duplicate]:
    with sessions() as s:
        return [Duplicate(id=c.id, name=c.name, phone=c.phone, reason=str(c.why))
                for c in merge.duplicates(s, who, contact_id)]


@router.post("/{contact_id}/merge", summary="Merge another contact into this one",
             responses=errors(404, 422), dependencies=MANAGER)
def merge_contact(contact_id: ContactId, body: MergeIn, who: CurrentPrincipal,
                  sessions: SessionsDep) -> MergeOut:
    """Its identities, conversations and messages, tags and fields move here (this contact's
    value wins where both have one; the other's is kept in ``detail``); the other is gone."""
    with answering(), sessions.begin() as s:
        if not access.sees_contact(s, who, body.other):
            raise HTTPException(404, f"no contact {body.other}")
        record = merge.merge(s, who, contact_id, body.other)
        return MergeOut(contact=record.contact_id, merged=record.merged_id,
                        detail=record.detail)

