"""Logging in and out: the login page, ``POST /auth/login`` (JSON or the page's form),
``POST /auth/logout`` and ``GET /auth/me``. The checks are ``server.services.auth``'s; here they
become a cookie, a redirect, or a status.

The session cookie is HttpOnly (no script reads it), SameSite=Lax (another site's form posts
arrive without it) and Secure when the request came over HTTPS, or ATENDE_PUBLIC_URL is
https (behind a TLS proxy that does not say so). Every refusal reads the same, whatever was
wrong; a throttled one is 429 with Retry-After.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field, ValidationError

from server.deps import (
    Principal,
    SessionCookie,
    SessionsDep,
    SettingsDep,
    errors,
    read_body,
    require,
)
from server.services import auth, desk
from server.settings import Settings
from server.web import i18n
from server.web.render import N_

router = APIRouter(tags=["access"])
templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")
FORM = "application/x-www-form-urlencoded"
REFUSED = N_("E-mail ou senha incorretos.")
THROTTLED = N_("Muitas tentativas. Tente de novo em {minutes} min.")


class LoginIn(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)


class TeamRef(BaseModel):
    id: int
    name: str


class Me(BaseModel):
    kind: str = Field(description="user (a session) or token")
    id: int | None = Field(description="The user's id; null for a token")
    name: str | None = Field(description="The user's name, or the token's")
    email: str | None
    level: str = Field(description="admin, manager or agent")
    teams: list[TeamRef]


_LOGIN_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": LoginIn.model_json_schema()},
    FORM: {"schema": {"type": "object", "required": ["email", "password", "csrftoken"],
                      "properties": {"email": {"type": "string"}, "password": {"type": "string"},
                                     "csrftoken": {"type": "string"},
                                     "next": {"type": "string"}}}}}}}
_LOGIN_ANSWERS: dict[int | str, dict[str, Any]] = {
    **errors(401, 422), 303: {"description": "Logged in from the form: on to `next`"},
    403: {"description": "CSRF token missing: send the csrftoken cookie's value as "
          "X-CSRFToken, or the form field csrftoken"},
    415: {"description": "Neither JSON nor a form"},
    429: {"description": "Too many failed logins lately: Retry-After says when to try"}}


def _secure(request: Request, settings: Settings) -> bool:
    return request.url.scheme == "https" or settings.public_url.startswith("https://")


def _next(target: object) -> str:
    """Where to go after logging in: a path of ours, never another site (``//evil``)."""
    text = target if isinstance(target, str) else ""
    return text if text.startswith("/") and not text.startswith(("//", "/\\")) else "/"


def _page(request: Request, status: int = 200, error: str = "", email: str = "",
          back: str = "/", headers: dict[str, str] | None = None, **values: int) -> HTMLResponse:
    language = i18n.chosen(request.cookies.get(i18n.COOKIE))
    _ = i18n.translator(language)
    return templates.TemplateResponse(
        request, "login.html", {"csrf_token": getattr(request.state, "csrf_token", ""),
                                "error": _(error).format(**values) if error else "",
                                "email": email, "next": back, "_": _,
                                "lang": language, "languages": i18n.LANGUAGES},
        status_code=status, headers=headers)


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, back: str = Query("/", alias="next")) -> HTMLResponse:
    return _page(request, back=_next(back))


@router.post("/auth/login", summary="Log in: a session cookie (JSON) or a redirect (form)",
             openapi_extra=_LOGIN_BODY, responses=_LOGIN_ANSWERS)
async def login(request: Request, sessions: SessionsDep, settings: SettingsDep) -> Response:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    page = kind == FORM  # the login page's form: answered with the page, or a redirect
    back = "/"
    try:
        if page:
            form = await request.form()
            back = _next(form.get("next"))
            body = LoginIn.model_validate({k: form.get(k) or "" for k in ("email", "password")})
        elif kind == "application/json":
            body = LoginIn.model_validate_json(await read_body(request, 8192))
        else:
            raise HTTPException(415, "send JSON {email, password}, or the login form")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    ip = request.client.host if request.client else ""
    try:
        made = await run_in_threadpool(auth.login, sessions, settings, body.email,
                                       body.password, ip)
    except auth.Throttled as exc:
        wait = {"Retry-After": str(exc.retry_after)}
        if page:
            minutes = -(-exc.retry_after // 60)
            return _page(request, 429, THROTTLED, body.email, back, wait, minutes=minutes)
        raise HTTPException(429, str(exc), headers=wait) from None
    except auth.Refused:
        if page:
            return _page(request, 401, REFUSED, body.email, back)
        raise HTTPException(401, "wrong e-mail or password") from None
    await run_in_threadpool(desk.logged_in, sessions, made.who)  # takes conversations now
    answer: Response = RedirectResponse(back, 303) if page else JSONResponse(
        await run_in_threadpool(auth.describe, sessions, made.who))
    answer.set_cookie(auth.COOKIE, made.token, max_age=int(settings.session_hours * 3600),
                      path="/", httponly=True, samesite="lax", secure=_secure(request, settings))
    return answer


@router.post("/auth/logout", status_code=204, summary="End this browser's session",
             responses={303: {"description": "From a form: on to the login page"}})
async def logout(request: Request, sessions: SessionsDep, settings: SettingsDep,
                 cookie: SessionCookie) -> Response:
    if cookie:
        await run_in_threadpool(desk.logging_out, sessions, cookie)  # no more conversations
        await run_in_threadpool(auth.logout, sessions, cookie)
    form = request.headers.get("content-type", "").startswith(FORM)
    answer = RedirectResponse("/login", 303) if form else Response(status_code=204)
    answer.delete_cookie(auth.COOKIE, path="/", httponly=True, samesite="lax",
                         secure=_secure(request, settings))
    return answer


@router.get("/auth/me", summary="Who is logged in: level and teams", responses=errors(401, 403))
def me(who: Annotated[Principal, Depends(require("agent"))], sessions: SessionsDep) -> Me:
    return Me.model_validate(auth.describe(sessions, who))
