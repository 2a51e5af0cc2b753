"""Pages: the contact list with its filter (updated in place by HTMX), one contact (history,
tags and fields, editable; merging a duplicate), and CSV import with its report. The filter is
the API's (``GET /api/contacts``, same parameters), so the export button hands the current
filter to ``GET /api/contacts/export``. Agents see the contacts of the conversations they may
see; importing, exporting and merging are for managers."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.deps import ContactId, PageAgent, PageManager, SessionsDep
from server.routes.pages.inbox_view import AUTHOR, STATUS, STATUS_STYLE, clock
from server.schema import Instance
from server.services import (
    access,
    contact_card,
    contact_checks,
    contact_csv,
    contact_data,
    contact_search,
)
from server.services import merge as merging
from server.services.access import Principal
from server.services.contact_checks import Refused, Why
from server.web import page
from server.web.render import N_

router = APIRouter()
TAG_MODES = [("any", N_("tem qualquer uma")), ("all", N_("tem todas")),
             ("none", N_("não tem nenhuma"))]
OPS = [("eq", N_("é igual a")), ("contains", N_("contém")), ("gt", N_("maior que / depois de")),
       ("lt", N_("menor que / antes de")), ("set", N_("está preenchido")),
       ("unset", N_("está vazio"))]
OPEN = [("", N_("tanto faz")), ("1", N_("sim")), ("0", N_("não"))]
PROBLEM_NAMES = {"last_from": N_("Última mensagem desde"), "last_to": N_("Última mensagem até"),
                 "tag": N_("Etiquetas"), "tag_mode": N_("Etiquetas"), "open": N_("Conversa aberta"),
                 "instance": N_("Número"), "field": N_("Campos")}
TYPE_HINTS = {"number": N_("número: 1234,56"), "date": N_("data: dd/mm/aaaa"),
              "choice": N_("uma das opções"), "text": N_("texto")}


async def form_of(request: Request) -> dict[str, str]:
    """A posted form's text fields (read here, so the routes stay sync)."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


Form = Annotated[dict[str, str], Depends(form_of)]


def _refused(request: Request) -> int:
    """A refused form's status: 422, but 200 to HTMX, which swaps in no 4xx answer (and the
    answer is the form again, the refusal beside its field)."""
    return 200 if request.headers.get("HX-Request") == "true" else 422


def _params(request: Request) -> dict[str, list[str]]:
    return {k: request.query_params.getlist(k) for k in request.query_params
            if k not in ("after",)}


def _choices(s: Session) -> dict[str, Any]:
    """What the filter form offers: the tags, fields and numbers there are."""
    return {"all_tags": [t.name for t, _ in contact_data.list_tags(s)],
            "all_fields": contact_data.list_fields(s),
            "instances": list(s.scalars(select(Instance.name).order_by(Instance.name))),
            "tag_modes": TAG_MODES, "ops": OPS, "open_choices": OPEN, "type_hints": TYPE_HINTS,
            "problem_names": PROBLEM_NAMES}


def _labels() -> dict[str, Any]:
    return {"clock": clock, "status_names": STATUS, "status_style": STATUS_STYLE,
            "author_names": AUTHOR, "phone_text": contact_checks.shown}


@router.get("/contacts", response_class=HTMLResponse)
def contact_list(who: PageAgent, request: Request, sessions: SessionsDep) -> HTMLResponse:
    params = _params(request)
    after = request.query_params.get("after", "")
    problems: dict[str, Why] = {}
    result = None
    with sessions() as s:
        try:
            f = contact_search.from_params(params)
            result = contact_search.search(s, who, f, after=int(after) if after.isdigit()
                                           and len(after) < 19 else None)
        except Refused as exc:
            problems = exc.problems
        context = {**_choices(s), **_labels(), "result": result, "problems": problems,
                   "params": params, "query": urlencode(params, doseq=True),
                   "filtered": any(v and any(x.strip() for x in v) for v in params.values()),
                   "rows": _condition_rows(params), "paged": bool(after)}
    return page(request, "contacts/list.html", context, who=who, block="results")


def _condition_rows(params: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """The filter form's field conditions: those asked, then blank ones, two at least."""
    keys, ops, values = (params.get(k, []) for k in ("field", "op", "value"))
    rows = [(k, ops[i] if i < len(ops) else "eq", values[i] if i < len(values) else "")
            for i, k in enumerate(keys) if k.strip()]
    return rows + [("", "eq", "")] * max(1, 2 - len(rows))


def _contact_page(request: Request, who: Principal, s: Session, contact_id: int, *,
                  block: str | None = None, problems: dict[str, Why] | None = None,
                  form: dict[str, str] | None = None, flash: str = "",
                  status: int = 200) -> HTMLResponse:
    card = contact_card.card(s, who, contact_id)
    lines, older = contact_card.history(s, who, contact_id)
    manager = who.at_least("manager")
    context = {**_labels(), "card": card, "lines": lines, "older": older,
               "all_fields": contact_data.list_fields(s), "type_hints": TYPE_HINTS,
               "all_tags": [t.name for t, _ in contact_data.list_tags(s)],
               "problems": problems or {}, "form": form, "flash": flash,
               "duplicates": merging.duplicates(s, who, contact_id) if manager else [],
               "identity_names": {"phone": N_("Telefone"), "lid": N_("ID do WhatsApp"),
                                  "address": N_("Endereço")}}
    return page(request, "contacts/contact.html", context, who=who, block=block, status=status)


@router.get("/contacts/import", response_class=HTMLResponse)
def import_page(who: PageManager, request: Request, sessions: SessionsDep) -> HTMLResponse:
    with sessions() as s:
        keys = sorted(contact_data.field_keys(s))
    return page(request, "contacts/import.html", {
        "report": None, "problems": {}, "keys": keys,
        "max_rows": contact_csv.MAX_ROWS}, who=who)


@router.post("/contacts/import", response_class=HTMLResponse)
def import_file(who: PageManager, request: Request, sessions: SessionsDep,
                file: Annotated[UploadFile, File()]) -> HTMLResponse:
    problems: dict[str, Why] = {}
    report = None
    try:
        report = contact_csv.import_csv(sessions, who, file.file.read(contact_csv.MAX_BYTES + 1))
    except Refused as exc:
        problems = exc.problems
    with sessions() as s:
        keys = sorted(contact_data.field_keys(s))
    return page(request, "contacts/import.html", {
        "report": report, "problems": problems, "keys": keys,
        "max_rows": contact_csv.MAX_ROWS}, who=who, block="report",
        status=_refused(request) if problems else 200)


@router.get("/contacts/{contact_id}", response_class=HTMLResponse)
def contact_page(who: PageAgent, contact_id: ContactId, request: Request,
                 sessions: SessionsDep) -> HTMLResponse:
    merged = request.query_params.get("merged", "")
    with sessions() as s:
        return _contact_page(request, who, s, contact_id, flash="merged" if merged else "")


@router.post("/contacts/{contact_id}", response_class=HTMLResponse)
def save_contact(who: PageAgent, contact_id: ContactId, request: Request, form: Form,
                 sessions: SessionsDep) -> HTMLResponse:
    """The name and the fields, all or none; each refusal beside its field."""
    fields = {k.removeprefix("field."): v for k, v in form.items() if k.startswith("field.")}
    try:
        with sessions.begin() as s:
            contact_card.update(s, contact_id, name=form.get("name", ""), fields=fields)
    except Refused as exc:
        with sessions() as s:
            return _contact_page(request, who, s, contact_id, block="data", form=form,
                                 problems=exc.problems, status=_refused(request))
    with sessions() as s:
        return _contact_page(request, who, s, contact_id, block="data", flash="saved")


@router.post("/contacts/{contact_id}/tags", response_class=HTMLResponse)
def change_tags(who: PageAgent, contact_id: ContactId, request: Request, form: Form,
                sessions: SessionsDep) -> HTMLResponse:
    """Add the tag in ``add``, or take away the one in ``remove``."""
    problems: dict[str, Why] = {}
    with sessions.begin() as s:
        tags = contact_card.card(s, who, contact_id).tags
        if form.get("remove"):
            tags = [t for t in tags if t != form["remove"]]
        elif form.get("add", "").strip():
            tags = [*tags, form["add"]]
        try:
            contact_card.update(s, contact_id, tags=tags)
        except Refused as exc:
            problems = exc.problems
    with sessions() as s:
        return _contact_page(request, who, s, contact_id, block="tags", problems=problems,
                             status=_refused(request) if problems else 200)


@router.post("/contacts/{contact_id}/merge", response_model=None)
def merge_into(who: PageManager, contact_id: ContactId, request: Request, form: Form,
               sessions: SessionsDep) -> HTMLResponse | RedirectResponse:
    """Merge the contact in ``other`` into this one, then show this one."""
    other = form.get("other", "")
    try:
        with sessions.begin() as s:
            if not (other.isdigit() and len(other) < 19
                    and access.sees_contact(s, who, int(other))):
                raise LookupError(other)
            merging.merge(s, who, contact_id, int(other))
    except LookupError:
        return _merge_refused(request, who, sessions, contact_id,
                              Refused({"other": Why("não há contato {id}", {"id": other})}))
    except Refused as exc:
        return _merge_refused(request, who, sessions, contact_id, exc)
    return RedirectResponse(f"/contacts/{contact_id}?merged={other}", 303)


def _merge_refused(request: Request, who: Principal, sessions: sessionmaker[Session],
                   contact_id: int, exc: Refused) -> HTMLResponse:
    with sessions() as s:
        return _contact_page(request, who, s, contact_id, problems=exc.problems, status=422)
