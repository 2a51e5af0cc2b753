"""The front door: ``/`` opens the inbox (after login), ``/lang/{code}`` switches language."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import RedirectResponse

from server.deps import PageAgent
from server.web import i18n

router = APIRouter()


@router.get("/")
def home(who: PageAgent) -> RedirectResponse:
    return RedirectResponse("/inbox", 303)


@router.get("/lang/{code}")
def language(code: str, back: str = Query("/", alias="next")) -> RedirectResponse:
    """Remember the language in a cookie (a year) and go back where the switch was clicked."""
    target = back if back.startswith("/") and not back.startswith(("//", "/\\")) else "/"
    answer = RedirectResponse(target, 303)
    if code in i18n.LANGUAGES:
        answer.set_cookie(i18n.COOKIE, code, max_age=365 * 86400, path="/", samesite="lax")
    return answer
