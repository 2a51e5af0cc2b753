"""Errors as a person sees them: a browser asking for a page gets a page, not JSON.

A 403 or 404 on a page (another team's conversation, a manager opening the users page) reads as
a short page in the viewer's language with a way back; API clients (``/api``, ``/auth``, ``/v1``,
``/webhooks``, or anyone not asking for HTML) keep FastAPI's JSON ``{"detail": ...}``.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from server.web import i18n
from server.web.render import templates

API_PREFIXES = ("/api/", "/auth/", "/v1/", "/webhooks/", "/simulator/api/", "/health")
TEXTS = {
    403: ("Sem acesso", "Seu nível de acesso não permite abrir esta página. Fale com um "
          "administrador se precisar dela."),
    404: ("Não encontrado", "Esta página não existe, ou o que ela mostra não é da sua equipe."),
}


def wants_page(request: Request) -> bool:
    path = request.url.path
    return (not path.startswith(API_PREFIXES) and request.method == "GET"
            and "text/html" in request.headers.get("accept", ""))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code not in TEXTS or not wants_page(request):
        return await http_exception_handler(request, exc)
    language = i18n.chosen(request.cookies.get(i18n.COOKIE))
    _ = i18n.translator(language)
    title, text = TEXTS[exc.status_code]
    return templates.TemplateResponse(
        request, "error.html", {"lang": language, "_": _, "title": _(title), "text": _(text)},
        status_code=exc.status_code)
