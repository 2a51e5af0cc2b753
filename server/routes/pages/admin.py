"""Pages: tags and custom fields. Managers read them (what flows and agents may use); admins
make, change and delete them. The same services as ``/api/tags`` and ``/api/fields`` decide;
a refusal is drawn beside its field and nothing is stored.

People (users, teams) and numbers are in ``admin_people`` and ``admin_instances``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from server.deps import PageAdmin, PageManager, Principal, RowId, SessionsDep
from server.routes.pages.admin_forms import form_values, refusal, tr
from server.services import contact_data
from server.web.render import N_, page

router = APIRouter()
TAG_INVALID = {"name": N_("Um nome de até 64 caracteres, com ao menos uma letra ou número."),
               "color": N_("Uma cor como #0f766e.")}
TAG_TAKEN = {"name": N_("Já existe uma etiqueta com este nome (maiúsculas e acentos não "
                        "contam).")}
FIELD_INVALID = {
    "key": N_("Só letras sem acento, números, _ e -, até 64, sem espaços (ex.: pedido)."),
    "label": N_("Um nome de 1 a 120 caracteres."),
    "type": N_("Escolha um dos tipos."),
    "choices": N_("Escreva as opções, uma por linha: de 1 a 100, sem repetir."),
}
FIELD_TAKEN = {"key": N_("Já existe um campo com esta chave."),
               "type": N_("Contatos têm valores neste campo: o tipo não muda. Limpe os valores "
                          "antes, ou crie outro campo."),
               "choices": N_("Contatos têm um valor que as novas opções não têm: mantenha-o, "
                             "ou limpe-o dos contatos antes.")}
TYPE_NAMES = {"text": N_("Texto"), "number": N_("Número"), "date": N_("Data"),
              "choice": N_("Opções")}


class TagForm(BaseModel):
    name: str = ""
    color: str = ""


class FieldForm(BaseModel):
    key: str = ""
    label: str = ""
    type: str = "text"
    choices: str = ""


@router.get("/admin/tags")
def tags_page(who: PageManager, request: Request, sessions: SessionsDep) -> Response:
    return _tags(request, who, sessions)


def _tags(request: Request, who: Principal, sessions: SessionsDep, values: dict[str, str] | None
          = None, errors: dict[str, str] | None = None, status: int = 200) -> Response:
    with sessions() as s:
        tags = contact_data.list_tags(s)
    return page(request, "admin/tags.html", {
        "tags": tags, "values": values or {"color": "#0f766e"}, "errors": errors or {},
        "can_edit": who.at_least("admin"), "saved": request.query_params.get("saved")},
        who=who, status=status)


@router.post("/admin/tags")
def create_tag(who: PageAdmin, request: Request, sessions: SessionsDep,
               form: Annotated[TagForm, Form()]) -> Response:
    try:
        with sessions.begin() as s:
            contact_data.create_tag(s, form.name, form.color or None)
    except ValueError as exc:
        return _tags(request, who, sessions, form_values(form),
                     refusal(exc, form_values(form), tr(request), TAG_INVALID, TAG_TAKEN), 422)
    return RedirectResponse("/admin/tags?saved=1", 303)


@router.get("/admin/tags/{tag_id}")
def tag_page(who: PageAdmin, tag_id: RowId, request: Request, sessions: SessionsDep) -> Response:
    with sessions() as s:
        found = next(((t, n) for t, n in contact_data.list_tags(s) if t.id == tag_id), None)
    if found is None:
        raise HTTPException(404, f"no tag {tag_id}")
    tag, count = found
    return page(request, "admin/tag.html", {
        "tag": tag, "count": count, "errors": {},
        "values": {"name": tag.name, "color": tag.color or "#0f766e"}}, who=who)


@router.post("/admin/tags/{tag_id}")
def update_tag(who: PageAdmin, tag_id: RowId, request: Request, sessions: SessionsDep,
               form: Annotated[TagForm, Form()]) -> Response:
    try:
        with sessions.begin() as s:
            contact_data.update_tag(s, tag_id, {"name": form.name, "color": form.color or None})
    except LookupError:
        raise HTTPException(404, f"no tag {tag_id}") from None
    except ValueError as exc:
        with sessions() as s:
            tag, count = next((t, n) for t, n in contact_data.list_tags(s) if t.id == tag_id)
        return page(request, "admin/tag.html", {
            "tag": tag, "count": count, "values": form_values(form),
            "errors": refusal(exc, form_values(form), tr(request), TAG_INVALID, TAG_TAKEN)},
            who=who, status=422)
    return RedirectResponse("/admin/tags?saved=1", 303)


@router.post("/admin/tags/{tag_id}/delete")
def delete_tag(who: PageAdmin, tag_id: RowId, sessions: SessionsDep) -> Response:
    try:
        with sessions.begin() as s:
            contact_data.delete_tag(s, tag_id)
    except LookupError:
        raise HTTPException(404, f"no tag {tag_id}") from None
    return RedirectResponse("/admin/tags?saved=1", 303)


@router.get("/admin/fields")
def fields_page(who: PageManager, request: Request, sessions: SessionsDep) -> Response:
    return _fields(request, who, sessions)


def _fields(request: Request, who: Principal, sessions: SessionsDep,
            values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
            status: int = 200) -> Response:
    with sessions() as s:
        fields = contact_data.list_fields(s)
    return page(request, "admin/fields.html", {
        "fields": fields, "values": values or {"type": "text"}, "errors": errors or {},
        "types": _types(request), "can_edit": who.at_least("admin"),
        "saved": request.query_params.get("saved")}, who=who, status=status)


def _types(request: Request) -> list[tuple[str, str]]:
    return [(t, tr(request)(TYPE_NAMES[t])) for t in contact_data.TYPES]


def _choices(form: FieldForm) -> list[str] | None:
    """The choices box, one per line, for a choice field; none for the other types."""
    lines = [c.strip() for c in form.choices.splitlines() if c.strip()]
    return lines if form.type == "choice" else None


@router.post("/admin/fields")
def create_field(who: PageAdmin, request: Request, sessions: SessionsDep,
                 form: Annotated[FieldForm, Form()]) -> Response:
    try:
        with sessions.begin() as s:
            contact_data.create_field(s, form.key.strip(), form.label, form.type, _choices(form))
    except ValueError as exc:
        return _fields(request, who, sessions, form_values(form),
                       refusal(exc, form_values(form), tr(request), FIELD_INVALID, FIELD_TAKEN),
                       422)
    return RedirectResponse("/admin/fields?saved=1", 303)


@router.get("/admin/fields/{key}")
def field_page(who: PageAdmin, key: str, request: Request, sessions: SessionsDep) -> Response:
    with sessions() as s:
        field = _field(s, key)
        values = {"key": field.key, "label": field.label, "type": field.type,
                  "choices": "\n".join(field.choices or [])}
    return _field_page(request, who, key, values, {})


def _field_page(request: Request, who: Principal, key: str, values: dict[str, str],
                errors: dict[str, str], status: int = 200) -> Response:
    return page(request, "admin/field.html", {"key": key, "values": values, "errors": errors,
                                              "types": _types(request)}, who=who, status=status)


def _field(s: Any, key: str) -> Any:
    try:
        return contact_data.get_field(s, key)
    except LookupError:
        raise HTTPException(404, f"no custom field {key!r}") from None


@router.post("/admin/fields/{key}")
def update_field(who: PageAdmin, key: str, request: Request, sessions: SessionsDep,
                 form: Annotated[FieldForm, Form()]) -> Response:
    try:
        with sessions.begin() as s:
            _field(s, key)
            contact_data.update_field(s, key, {"label": form.label, "type": form.type,
                                               "choices": _choices(form)})
    except ValueError as exc:
        values = {**form_values(form), "key": key}
        return _field_page(request, who, key, values, refusal(
            exc, values, tr(request), FIELD_INVALID, FIELD_TAKEN), 422)
    return RedirectResponse("/admin/fields?saved=1", 303)


@router.post("/admin/fields/{key}/delete")
def delete_field(who: PageAdmin, key: str, sessions: SessionsDep) -> Response:
    with sessions.begin() as s:
        _field(s, key)
        contact_data.delete_field(s, key)
    return RedirectResponse("/admin/fields?saved=1", 303)

