"""API for what a company keeps on its contacts: tags and typed custom fields, their
definitions (managers read them, admins change them) and each contact's own (agents and up, for
the contacts they may see). Flows set the same data (``server.services.contact_data``);
what is refused here is refused there, with the same words."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from server.deps import (
    ADMIN_ERRORS,
    ContactId,
    RowId,
    SessionDep,
    SessionsDep,
    errors,
    require,
    require_admin,
)
from server.schema import CustomField, Tag
from server.services import contact_data

router = APIRouter(prefix="/api", tags=["admin"], responses=ADMIN_ERRORS)
ADMIN = [Depends(require_admin)]
MANAGER = [Depends(require("manager"))]
AGENT = [Depends(require("agent"))]
COLOR = r"^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$"
FieldKey = Annotated[str, Path(pattern=contact_data.KEY.pattern)]


@contextmanager
def answering() -> Iterator[None]:
    """A service's refusal as the HTTP answer: unknown is 404, refused by what is stored 409,
    invalid 422 (a FieldError per field key, where FastAPI puts a malformed body's)."""
    try:
        yield
    except contact_data.FieldError as exc:
        raise HTTPException(422, [{"loc": ["body", key], "msg": why, "type": "value_error"}
                                  for key, why in exc.problems.items()]) from None
    except contact_data.Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    except LookupError as exc:
        if isinstance(exc, KeyError):  # a bug, not an unknown row
            raise
        raise HTTPException(404, str(exc)) from None


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class TagOut(BaseModel):
    id: int
    name: str
    color: str | None
    contacts: int = Field(description="How many contacts have it")


class TagIn(Strict):
    name: str = Field(min_length=1, max_length=64,
                      description="Compared without case or accents: 'VIP' is the tag 'vip'")
    color: str | None = Field(None, pattern=COLOR)


class TagPatch(Strict):
    """What to change; a color of null removes it."""

    name: str | None = Field(None, min_length=1, max_length=64)
    color: str | None = Field(None, pattern=COLOR)


class FieldOut(BaseModel):
    key: str = Field(description="As flows name it: fields.<key>")
    label: str
    type: str
    choices: list[str] | None


class FieldIn(Strict):
    key: str = Field(pattern=contact_data.KEY.pattern)
    label: str = Field(min_length=1, max_length=120)
    type: Literal["text", "number", "date", "choice"] = Field(
        description="number: 1.234,56 or 1234.56, kept as 1234.56; date: dd/mm/aaaa")
    choices: list[str] | None = Field(None, max_length=contact_data.MAX_CHOICES,
                                      description="Required for type choice, only for it")


class FieldPatch(Strict):
    """What to change. The type stays while contacts hold values; a choice they hold stays."""

    label: str | None = Field(None, min_length=1, max_length=120)
    type: Literal["text", "number", "date", "choice"] | None = None
    choices: list[str] | None = Field(None, max_length=contact_data.MAX_CHOICES)


class TagName(Strict):
    name: str = Field(min_length=1, max_length=64)


def _tag_out(tag: Tag, contacts: int) -> TagOut:
    return TagOut(id=tag.id, name=tag.name, color=tag.color, contacts=contacts)


def _field_out(field: CustomField) -> FieldOut:
    return FieldOut(key=field.key, label=field.label, type=field.type, choices=field.choices)


@router.get("/tags", summary="Tags, with how many contacts have each", dependencies=MANAGER)
def list_tags(s: SessionDep) -> list[TagOut]:
    return [_tag_out(t, n) for t, n in contact_data.list_tags(s)]


@router.post("/tags", summary="Make a tag", status_code=201, responses=errors(409),
             dependencies=ADMIN)
def create_tag(body: TagIn, sessions: SessionsDep) -> TagOut:
    with answering(), sessions.begin() as s:
        return _tag_out(contact_data.create_tag(s, body.name, body.color), 0)


@router.patch("/tags/{tag_id}", summary="Rename a tag or change its color",
              responses=errors(404, 409), dependencies=ADMIN)
def patch_tag(tag_id: RowId, body: TagPatch, sessions: SessionsDep) -> TagOut:
    with answering(), sessions.begin() as s:
        tag = contact_data.update_tag(s, tag_id, body.model_dump(exclude_unset=True))
        return next(_tag_out(t, n) for t, n in contact_data.list_tags(s) if t.id == tag.id)


@router.delete("/tags/{tag_id}", summary="Delete a tag (its contacts stay, untagged)",
               status_code=204, responses=errors(404), dependencies=ADMIN)
def delete_tag(tag_id: RowId, sessions: SessionsDep) -> Response:
    with answering(), sessions.begin() as s:
        contact_data.delete_tag(s, tag_id)
    return Response(status_code=204)


@router.get("/fields", summary="Custom fields", dependencies=MANAGER)
def list_fields(s: SessionDep) -> list[FieldOut]:
    return [_field_out(f) for f in contact_data.list_fields(s)]


@router.post("/fields", summary="Make a custom field", status_code=201, responses=errors(409),
             dependencies=ADMIN)
def create_field(body: FieldIn, sessions: SessionsDep) -> FieldOut:
    with answering(), sessions.begin() as s:
        return _field_out(contact_data.create_field(s, body.key, body.label, body.type,
                                                    body.choices))


@router.patch("/fields/{key}", summary="Change a custom field's label, type or choices",
              responses=errors(404, 409), dependencies=ADMIN)
def patch_field(key: FieldKey, body: FieldPatch, sessions: SessionsDep) -> FieldOut:
    with answering(), sessions.begin() as s:
        return _field_out(contact_data.update_field(s, key, body.model_dump(exclude_unset=True)))


@router.delete("/fields/{key}", summary="Delete a custom field and every contact's value of it",
               status_code=204, responses=errors(404), dependencies=ADMIN)
def delete_field(key: FieldKey, sessions: SessionsDep) -> Response:
    with answering(), sessions.begin() as s:
        contact_data.delete_field(s, key)
    return Response(status_code=204)


@router.get("/contacts/{contact_id}/tags", summary="A contact's tags", responses=errors(404),
            dependencies=AGENT)
def contact_tags(contact_id: ContactId, s: SessionDep) -> list[str]:
    with answering():
        contact_data.require_contact(s, contact_id)
    return sorted(contact_data.tags_of(s, contact_id))


@router.put("/contacts/{contact_id}/tags", summary="Tag a contact (the tag is made if new)",
            responses=errors(404), dependencies=AGENT)
def tag_contact(contact_id: ContactId, body: TagName, sessions: SessionsDep) -> list[str]:
    with answering(), sessions.begin() as s:
        contact_data.set_tag(s, contact_id, body.name)
        return sorted(contact_data.tags_of(s, contact_id))


@router.delete("/contacts/{contact_id}/tags/{name}", summary="Untag a contact", status_code=204,
               responses=errors(404), dependencies=AGENT)
def untag_contact(contact_id: ContactId, name: str, sessions: SessionsDep) -> Response:
    with answering(), sessions.begin() as s:
        contact_data.require_contact(s, contact_id)
        contact_data.remove_tag(s, contact_id, name)
    return Response(status_code=204)


@router.get("/contacts/{contact_id}/fields", summary="A contact's custom field values",
            responses=errors(404), dependencies=AGENT)
def contact_fields(contact_id: ContactId, s: SessionDep) -> dict[str, str]:
    with answering():
        contact_data.require_contact(s, contact_id)
    return contact_data.fields_of(s, contact_id)


@router.patch("/contacts/{contact_id}/fields", responses=errors(404, 422),
              summary="Set a contact's custom fields, all or none", dependencies=AGENT)
def patch_contact_fields(
        contact_id: ContactId, sessions: SessionsDep,
        values: Annotated[dict[str, str | None], Body(max_length=200, examples=[
            {"plano": "ouro", "renda": "1.234,56", "nascimento": "25/12/1990"}])],
) -> dict[str, str]:
    """Each value is checked against its field's type and kept normalized; "" or null clears
    it. One refused value stores none, and the 422 names each refused key."""
    with answering(), sessions.begin() as s:
        contact_data.set_fields(s, contact_id, {k: v or "" for k, v in values.items()})
        return contact_data.fields_of(s, contact_id)
