"""Pages: teams (members, business hours, what customers are told) and users (level, teams,
active or not). Admins only, as ``/api/teams`` and ``/api/users``; the same services decide.

A new user gets a password made here and shown once, on the answer to the form (never stored
in clear, never shown again; ``Cache-Control: no-store``): the admin does not invent one, so no
weak or reused password is typed for everyone, and a lost one is replaced by "Gerar nova senha",
which ends that user's sessions. Business hours are edited a weekday per line
(``server.services.hours_form``) and saved as the hours JSON the API takes.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from server.deps import PageAdmin, Principal, RowId, SessionsDep
from server.routes.pages.admin_forms import ago, form_values, refusal, tr
from server.schema import utcnow
from server.services import auth, hours_form, people
from server.web import i18n
from server.web.render import LEVEL_NAMES, N_, page

router = APIRouter()
NO_STORE = {"Cache-Control": "no-store"}
DAY_NAMES = {"seg": N_("Segunda"), "ter": N_("Terça"), "qua": N_("Quarta"), "qui": N_("Quinta"),
             "sex": N_("Sexta"), "sab": N_("Sábado"), "dom": N_("Domingo")}
BAD_LINE = N_("Não entendi “{value}”: escreva intervalos como 08:00-12:00, 13:00-18:00, o fim "
              "depois do início (vazio: fechado no dia).")
TEAM_INVALID = {
    "name": N_("Um nome de 1 a 64 caracteres."),
    **dict.fromkeys(hours_form.WEEKDAYS, BAD_LINE),
    "timezone": N_("Fuso horário desconhecido: escolha um da lista."),
    "closed": N_("Escreva as datas como 25/12/2025, separadas por vírgula."),
    "week": N_("Nenhum dia tem horário: escreva ao menos um, ou marque “Sempre aberta”."),
    "closed_window_minutes": N_("Um número inteiro de minutos, 1 ou mais."),
    "handoff_message": N_("No máximo 4.000 caracteres."),
    "closed_message": N_("No máximo 4.000 caracteres."),
}
TEAM_TAKEN = {"name": N_("Já existe uma equipe com este nome.")}
USER_INVALID = {"name": N_("Um nome de 1 a 120 caracteres."),
                "email": N_("“{value}” não é um e-mail válido."),
                "level": N_("Escolha um dos níveis.")}
USER_TAKEN = {"email": N_("Já existe um usuário com este e-mail."),
              "level": N_("É o último administrador ativo: torne outra pessoa administradora "
                          "antes."),
              "active": N_("É o último administrador ativo: torne outra pessoa "
                           "administradora antes.")}


class TeamForm(BaseModel):
    name: str = ""
    handoff_message: str = ""
    closed_message: str = ""
    closed_window_minutes: str = "720"
    always: str = ""
    timezone: str = hours_form.DEFAULT_ZONE
    seg: str = ""
    ter: str = ""
    qua: str = ""
    qui: str = ""
    sex: str = ""
    sab: str = ""
    dom: str = ""
    closed: str = ""


class UserForm(BaseModel):
    name: str = ""
    email: str = ""
    level: str = "agent"
    active: str = ""
    teams: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = []


class MemberForm(BaseModel):
    user_id: int = Field(0, ge=0, le=2**63 - 1)


def _team_changes(form: TeamForm) -> dict[str, Any]:
    """The form as the service's changes; the hours from the week editor (a FieldError)."""
    minutes = form.closed_window_minutes.strip()
    return {"name": form.name, "hours": hours_form.hours_from_week(form_values(form)),
            "handoff_message": form.handoff_message, "closed_message": form.closed_message,
            "closed_window_minutes": int(minutes) if minutes.isdigit() else minutes}


@router.get("/admin/teams")
def teams_page(who: PageAdmin, request: Request, sessions: SessionsDep) -> Response:
    with sessions() as s:
        teams = people.list_teams(s)
        members = people.members(s, [t.id for t in teams])
        now = utcnow()
        rows = [{"team": t, "members": members[t.id], "hours": hours_form.summary(t.hours),
                 "open": hours_form.open_now(t.hours, now)} for t in teams]
    return page(request, "admin/teams.html", {"rows": rows}, who=who)


@router.get("/admin/teams/new")
def new_team_page(who: PageAdmin, request: Request) -> Response:
    values = {"closed_window_minutes": "720", **hours_form.week_of(None)}
    return _team_page(request, who, None, values, {})


def _team_page(request: Request, who: Principal, team: Any, values: dict[str, str],
               errors: dict[str, str], status: int = 200, s: Session | None = None) -> Response:
    context: dict[str, Any] = {"team": team, "values": values, "errors": errors,
                               "days": DAY_NAMES, "zones": hours_form.zones(),
                               "saved": request.query_params.get("saved")}
    if team is not None and s is not None:
        inside = people.members(s, [team.id])[team.id]
        context["members"] = inside
        context["candidates"] = [u for u in people.list_users(s)
                                 if u.active and u.id not in {m.id for m in inside}]
    return page(request, "admin/team.html", context, who=who, status=status)


@router.post("/admin/teams")
def create_team(who: PageAdmin, request: Request, sessions: SessionsDep,
                form: Annotated[TeamForm, Form()]) -> Response:
    try:
        changes = _team_changes(form)
        with sessions.begin() as s:
            team = people.create_team(s, changes.pop("name"), **changes)
            team_id = team.id
    except ValueError as exc:
        return _team_page(request, who, None, form_values(form), refusal(
            exc, form_values(form), tr(request), TEAM_INVALID, TEAM_TAKEN), 422)
    return RedirectResponse(f"/admin/teams/{team_id}?saved=1", 303)


@router.get("/admin/teams/{team_id}")
def team_page(who: PageAdmin, team_id: RowId, request: Request,
              sessions: SessionsDep) -> Response:
    with sessions() as s:
        team = _team(s, team_id)
        values = {"name": team.name, "handoff_message": team.handoff_message or "",
                  "closed_message": team.closed_message or "",
                  "closed_window_minutes": str(team.closed_window_minutes),
                  **hours_form.week_of(team.hours)}
        return _team_page(request, who, team, values, {}, s=s)


@router.post("/admin/teams/{team_id}")
def update_team(who: PageAdmin, team_id: RowId, request: Request, sessions: SessionsDep,
                form: Annotated[TeamForm, Form()]) -> Response:
    try:
        changes = _team_changes(form)
        with sessions.begin() as s:
            _team(s, team_id)
            people.update_team(s, team_id, changes)
    except ValueError as exc:
        with sessions() as s:
            return _team_page(request, who, _team(s, team_id), form_values(form), refusal(
                exc, form_values(form), tr(request), TEAM_INVALID, TEAM_TAKEN), 422, s)
    return RedirectResponse(f"/admin/teams/{team_id}?saved=1", 303)


@router.post("/admin/teams/{team_id}/members")
def add_member(who: PageAdmin, team_id: RowId, sessions: SessionsDep,
               form: Annotated[MemberForm, Form()]) -> Response:
    try:
        with sessions.begin() as s:
            people.add_member(s, team_id, form.user_id)
    except LookupError:
        raise HTTPException(404, f"no team {team_id} or user {form.user_id}") from None
    return RedirectResponse(f"/admin/teams/{team_id}?saved=1#members", 303)


@router.post("/admin/teams/{team_id}/members/{user_id}/remove")
def remove_member(who: PageAdmin, team_id: RowId, user_id: RowId,
                  sessions: SessionsDep) -> Response:
    try:
        with sessions.begin() as s:
            people.remove_member(s, team_id, user_id)
    except LookupError:
        raise HTTPException(404, f"no team {team_id}") from None
    return RedirectResponse(f"/admin/teams/{team_id}?saved=1#members", 303)


def _team(s: Session, team_id: int) -> Any:
    try:
        return people.get_team(s, team_id)
    except LookupError:
        raise HTTPException(404, f"no team {team_id}") from None


@router.get("/admin/users")
def users_page(who: PageAdmin, request: Request, sessions: SessionsDep) -> Response:
    lang = i18n.chosen(request.cookies.get(i18n.COOKIE))
    users = [{**u, "last_ago": ago(u["last_login"], lang)} for u in auth.listing(sessions)]
    return page(request, "admin/users.html", {"users": users,
                                              "saved": request.query_params.get("saved")},
                who=who)


@router.get("/admin/users/new")
def new_user_page(who: PageAdmin, request: Request, sessions: SessionsDep) -> Response:
    return _user_page(request, who, sessions, None, {"level": "agent", "active": "1"}, set(), {})


def _user_page(request: Request, who: Principal, sessions: SessionsDep, user: Any,
               values: dict[str, str], teams: set[int], errors: dict[str, str],
               status: int = 200) -> Response:
    with sessions() as s:
        all_teams = people.list_teams(s)
    return page(request, "admin/user.html", {
        "user": user, "values": values, "chosen": teams, "teams": all_teams, "errors": errors,
        "levels": [(level, tr(request)(name)) for level, name in LEVEL_NAMES.items()],
        "saved": request.query_params.get("saved")}, who=who, status=status)


@router.post("/admin/users")
def create_user(who: PageAdmin, request: Request, sessions: SessionsDep,
                form: Annotated[UserForm, Form()]) -> Response:
    password = secrets.token_urlsafe(12)  # 96 bits, shown once below
    with sessions() as s:
        if not set(form.teams) <= {t.id for t in people.list_teams(s)}:
            raise HTTPException(404, "no such team")
    try:
        user = auth.create_user(sessions, form.name, form.email, form.level, password)
        with sessions.begin() as s:
            people.set_teams(s, user.id, set(form.teams))
    except ValueError as exc:
        return _user_page(request, who, sessions, None, form_values(form), set(form.teams),
                          refusal(exc, form_values(form), tr(request), USER_INVALID, USER_TAKEN),
                          422)
    return page(request, "admin/password.html", {"user": user, "password": password,
                                                 "new": True}, who=who, headers=NO_STORE)


@router.get("/admin/users/{user_id}")
def user_page(who: PageAdmin, user_id: RowId, request: Request,
              sessions: SessionsDep) -> Response:
    with sessions() as s:
        user = _user(s, user_id)
        teams = people.teams_of(s, user_id)
    values = {"name": user.name, "email": user.email, "level": user.level,
              "active": "1" if user.active else ""}
    return _user_page(request, who, sessions, user, values, teams, {})


@router.post("/admin/users/{user_id}")
def update_user(who: PageAdmin, user_id: RowId, request: Request, sessions: SessionsDep,
                form: Annotated[UserForm, Form()]) -> Response:
    try:
        with sessions.begin() as s:
            _user(s, user_id)
            people.update_user(s, user_id, {"name": form.name, "email": form.email,
                                            "level": form.level, "active": bool(form.active)})
            people.set_teams(s, user_id, set(form.teams))
    except ValueError as exc:
        with sessions() as s:
            user = _user(s, user_id)
        return _user_page(request, who, sessions, user, form_values(form), set(form.teams),
                          refusal(exc, form_values(form), tr(request), USER_INVALID, USER_TAKEN),
                          422)
    except LookupError:
        raise HTTPException(404, "no such team") from None
    return RedirectResponse("/admin/users?saved=1", 303)


@router.post("/admin/users/{user_id}/password")
def new_password(who: PageAdmin, user_id: RowId, request: Request,
                 sessions: SessionsDep) -> Response:
    with sessions() as s:
        user = _user(s, user_id)
    password = secrets.token_urlsafe(12)
    auth.set_password(sessions, user.email, password)
    return page(request, "admin/password.html", {"user": user, "password": password,
                                                 "new": False}, who=who, headers=NO_STORE)


def _user(s: Session, user_id: int) -> Any:
    try:
        return people.get_user(s, user_id)
    except LookupError:
        raise HTTPException(404, f"no user {user_id}") from None

