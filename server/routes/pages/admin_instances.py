"""Pages: the connected WhatsApp numbers. Admins only, as ``/api/instances``; the same services
decide (``instances``, ``connection``, ``outbox``).

Credentials go in and never come out: the edit form's secret inputs are always empty (blank
keeps what is stored) and a page says only whether one is set. A webhook secret made here (at
creation, or rotated) is shown once, on the answer to that form, with ``no-store``. While a
number waits to be paired its QR code is fetched again every few seconds (htmx polling, which
stops with status 286 once it is linked).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from gateway_bridge import NotOffered
from server import runtime
from server.deps import PageAdmin, Principal, RowId, SessionsDep, SettingsDep
from server.routes.pages.admin_forms import ago, base_url, form_values, refusal, tr
from server.schema import Instance
from server.services import connection, instances, outbox
from server.tasks import deliver
from server.web import i18n, qr
from server.web.render import N_, page

router = APIRouter()
NO_STORE = {"Cache-Control": "no-store"}
STOP_POLLING = 286  # htmx stops an "every Ns" trigger on this status
PROVIDERS = {"evolution": "Evolution API", "waha": "WAHA", "cloud": "WhatsApp Cloud API"}
SECRETS = ("api_key", "webhook_secret", "verify_token")
INVALID = {
    "name": N_("Letras, números, _ . e -, até 64, começando por letra ou número (ex.: vendas-01)."),
    "provider": N_("Escolha um dos gateways."),
    "api_url": N_("Um endereço http:// ou https:// com o servidor (ex.: https://evo.loja.com.br)."),
    "api_key": N_("Este gateway precisa da chave de API."),
    "webhook_secret": N_("Um segredo de ao menos 8 caracteres (na Cloud API: o app secret)."),
    "verify_token": N_("A Cloud API precisa do token de verificação."),
    "options.phone_number_id": N_("A Cloud API precisa do ID do número (phone_number_id)."),
    "send_interval_s": N_("Segundos entre envios: um número de 0 a 3600."),
    "daily_cap": N_("Um número inteiro, 1 ou mais."),
}
TAKEN = {"name": N_("Já existe um número com este nome.")}
TROUBLE = {
    "disconnected": N_("Desconectado do WhatsApp{since}: as respostas esperam na fila até "
                       "reconectar. Verifique o gateway."),
    "pairing": N_("Aguardando pareamento{since}: escaneie o QR code com o WhatsApp do número."),
    "capped": N_("Atingiu o limite diário de {cap} envios: o resto sai amanhã."),
}
STATES = {"connected": N_("Conectado"), "disconnected": N_("Desconectado"),
          "pairing": N_("Pareando"), "unknown": N_("Desconhecido")}


class GatewayForm(BaseModel):
    """The form's fields; options are named as the service names them (``options.session``)."""

    model_config = ConfigDict(populate_by_name=True)
    api_url: str = ""
    api_key: str = ""
    webhook_secret: str = ""
    verify_token: str = ""
    instance: str = Field("", alias="options.instance")
    session: str = Field("", alias="options.session")
    phone_number_id: str = Field("", alias="options.phone_number_id")
    api_version: str = Field("", alias="options.api_version")
    send_interval_s: str = ""
    daily_cap: str = ""


class NewForm(GatewayForm):
    name: str = ""
    provider: str = "evolution"


def _fields(form: GatewayForm, provider: str) -> dict[str, Any]:
    """The form as the service's fields: blanks left out (a secret left blank is kept), the
    options this provider has, numbers as numbers (else as typed, for the service to refuse)."""
    options = {k: v.strip() for k, v in form.model_dump().items()
               if k in instances.OPTIONS.get(provider, ()) and v.strip()}
    out: dict[str, Any] = {k: getattr(form, k).strip() for k in ("api_url", *SECRETS)
                           if getattr(form, k).strip()}
    if options:
        out["options"] = options
    for key, kind in (("send_interval_s", float), ("daily_cap", int)):
        text = getattr(form, key).strip().replace(",", ".")
        if text:
            try:
                out[key] = kind(text)
            except ValueError:
                out[key] = text
    return out


def _values(form: GatewayForm) -> dict[str, str]:
    """What the form is drawn again with: never a secret."""
    return {k: v for k, v in form_values(form).items() if k not in SECRETS} | {
        f"options.{k}": getattr(form, k) for k in ("instance", "session", "phone_number_id",
                                                   "api_version")}


@router.get("/admin/instances")
def instances_page(who: PageAdmin, request: Request, sessions: SessionsDep) -> Response:
    with sessions() as s:
        rows = [_row(request, i) for i in instances.live(s)]
    return page(request, "admin/instances.html", {"rows": rows}, who=who)


def _row(request: Request, inst: Instance) -> dict[str, Any]:
    """What the list and the detail show of a number's connection, in the viewer's words."""
    _ = tr(request)
    lang = i18n.chosen(request.cookies.get(i18n.COOKIE))
    kind = connection.trouble(inst)
    since = ago(inst.connection_since, lang)
    alert = _(TROUBLE[kind]).format(since=f" ({since})" if since else "", cap=inst.daily_cap
                                    ) if kind else ""
    return {"inst": inst, "provider": PROVIDERS.get(inst.provider, inst.provider),
            "state": inst.connection_state, "state_label": _(STATES.get(
                inst.connection_state, STATES["unknown"])), "since": since,
            "seen": ago(inst.connection_checked_at, lang), "alert": alert,
            "pairs": connection.pairs(inst)}


@router.get("/admin/instances/new")
def new_instance_page(who: PageAdmin, request: Request,
                      provider: Annotated[str, Query()] = "evolution") -> Response:
    chosen = provider if provider in PROVIDERS else "evolution"
    return page(request, "admin/instance_new.html", {
        "values": {"provider": chosen}, "errors": {}, "providers": PROVIDERS},
        who=who, block="gateway")


@router.post("/admin/instances")
def create_instance(who: PageAdmin, request: Request, sessions: SessionsDep,
                    settings: SettingsDep, form: Annotated[NewForm, Form()]) -> Response:
    try:
        made = instances.create(sessions, {"name": form.name.strip(), "provider": form.provider,
                                           **_fields(form, form.provider)})
    except ValueError as exc:
        values = _values(form)
        return page(request, "admin/instance_new.html", {
            "values": values, "providers": PROVIDERS,
            "errors": refusal(exc, values, tr(request), INVALID, TAKEN)}, who=who, status=422)
    if made.webhook_secret is None:
        return RedirectResponse(f"/admin/instances/{made.instance.name}?saved=1", 303)
    return _secret_page(request, who, made.instance, made.webhook_secret,
                        base_url(request, settings.public_url), new=True)


def _secret_page(request: Request, who: Principal, inst: Instance, secret: str, base: str,
                 new: bool) -> Response:
    return page(request, "admin/secret.html", {
        "inst": inst, "secret": secret, "new": new,
        "webhook_url": instances.webhook_url(inst, base, secret)}, who=who, headers=NO_STORE)


@router.get("/admin/instances/{name}")
def instance_page(who: PageAdmin, name: str, request: Request, sessions: SessionsDep,
                  settings: SettingsDep) -> Response:
    with sessions() as s:
        inst = _instance(s, name)
        values = {"api_url": inst.api_url or "", "send_interval_s": f"{inst.send_interval_s:g}",
                  "daily_cap": str(inst.daily_cap),
                  **{f"options.{k}": str(v) for k, v in (inst.options or {}).items()}}
        return _instance_page(request, who, s, inst, values, {}, settings.public_url)


def _instance_page(request: Request, who: Principal, s: Session, inst: Instance,
                   values: dict[str, str], errors: dict[str, str], public_url: str,
                   status: int = 200) -> Response:
    return page(request, "admin/instance.html", {
        **_row(request, inst), "values": values, "errors": errors,
        "has": {"api_key": bool(inst.api_key), "verify_token": bool(inst.verify_token)},
        "webhook_url": instances.webhook_url(inst, base_url(request, public_url)),
        "counts": connection.counts(s, inst.id), "providers": PROVIDERS,
        "dead": outbox.dead_letters(s, inst.name, limit=20),
        "saved": request.query_params.get("saved")}, who=who, status=status)


@router.post("/admin/instances/{name}")
def update_instance(who: PageAdmin, name: str, request: Request, sessions: SessionsDep,
                    settings: SettingsDep, form: Annotated[GatewayForm, Form()]) -> Response:
    with sessions() as s:
        provider = _instance(s, name).provider
    changes = _fields(form, provider)
    if not form.api_url.strip():
        changes["api_url"] = None  # cleared: the service says whether the gateway needs one
    try:
        instances.update(sessions, name, changes, models=set())
    except ValueError as exc:
        values = _values(form)
        with sessions() as s:
            return _instance_page(request, who, s, _instance(s, name), values,
                                  refusal(exc, values, tr(request), INVALID, TAKEN),
                                  settings.public_url, 422)
    return RedirectResponse(f"/admin/instances/{name}?saved=1", 303)


@router.get("/admin/instances/{name}/qr")
def qr_fragment(who: PageAdmin, name: str, request: Request, sessions: SessionsDep) -> Response:
    """The QR code block, polled while the number pairs; 286 (stop polling) once linked."""
    with sessions() as s:
        state = _instance(s, name).connection_state
    code, offered = None, True
    if state != "connected":
        try:
            code = connection.qr(runtime.current().http, sessions, name)
        except NotOffered:
            offered = False
        except LookupError:
            raise HTTPException(404, f"no instance {name!r}") from None
    status = STOP_POLLING if state == "connected" or not offered else 200
    code = qr.as_image(code) if code else None
    return page(request, "admin/_qr.html", {"name": name, "state": state, "code": code,
                                            "offered": offered}, who=who, status=status,
                headers=NO_STORE)


@router.post("/admin/instances/{name}/check")
def check_now(who: PageAdmin, name: str, sessions: SessionsDep) -> Response:
    with sessions() as s:
        inst_id = _instance(s, name).id
    connection.check(runtime.current().http, sessions, inst_id)
    return RedirectResponse(f"/admin/instances/{name}", 303)


@router.post("/admin/instances/{name}/secret")
def rotate_secret(who: PageAdmin, name: str, request: Request, sessions: SessionsDep,
                  settings: SettingsDep) -> Response:
    try:
        inst, fresh = instances.rotate_secret(sessions, name)
    except LookupError:
        raise HTTPException(404, f"no instance {name!r}") from None
    return _secret_page(request, who, inst, fresh, base_url(request, settings.public_url),
                        new=False)


@router.post("/admin/instances/{name}/replay/{outbox_id}")
def replay(who: PageAdmin, name: str, outbox_id: RowId, sessions: SessionsDep) -> Response:
    try:
        outbox.replay(sessions, outbox_id)
    except LookupError:
        raise HTTPException(404, f"no failed send {outbox_id}") from None
    deliver(outbox_id)
    return RedirectResponse(f"/admin/instances/{name}?saved=1#dead", 303)


@router.post("/admin/instances/{name}/delete")
def delete_instance(who: PageAdmin, name: str, sessions: SessionsDep) -> Response:
    try:
        instances.remove(sessions, name)
    except LookupError:
        raise HTTPException(404, f"no instance {name!r}") from None
    return RedirectResponse("/admin/instances", 303)


def _instance(s: Session, name: str) -> Instance:
    try:
        return instances.get(s, name)
    except LookupError:
        raise HTTPException(404, f"no instance {name!r}") from None
