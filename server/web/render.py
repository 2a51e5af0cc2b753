"""Drawing a page: the layout's context (who, menu, language, CSRF token) and HTMX fragments.

Every page goes through ``page``: it adds what the layout needs, so a route passes only its own
data. When HTMX asks (the ``HX-Request`` header) and the route names a block, only that block is
rendered: a list filtered in place is the same template as the page around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2_fragments.fastapi import Jinja2Blocks

from server.services.access import Principal
from server.web import i18n

templates = Jinja2Blocks(directory=Path(__file__).parent.parent / "templates")


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str  # pt-BR; translated when drawn
    level: str  # the least level that sees it
    icon: str  # one of the layout's inline icons


def N_(text: str) -> str:
    """Marks a text for the catalog (``tests/test_i18n.py`` extracts it); translated when drawn."""
    return text


LEVEL_NAMES = {"agent": N_("Atendente"), "manager": N_("Gestor"), "admin": N_("Administrador")}
MENU = (
    NavItem("/inbox", N_("Conversas"), "agent", "chat"),
    NavItem("/contacts", N_("Contatos"), "agent", "people"),
    NavItem("/admin/tags", N_("Etiquetas"), "manager", "tag"),
    NavItem("/admin/fields", N_("Campos"), "manager", "field"),
    NavItem("/admin/reports", N_("Relatórios"), "manager", "chart"),
    NavItem("/admin/teams", N_("Equipes"), "admin", "team"),
    NavItem("/admin/users", N_("Usuários"), "admin", "user"),
    NavItem("/admin/instances", N_("Números"), "admin", "phone"),
)


def nav_for(who: Principal) -> list[NavItem]:
    """The menu entries this level may open (the routes check again: a menu is not a lock)."""
    return [item for item in MENU if who.at_least(item.level)]


def page(request: Request, template: str, context: dict[str, Any], *, who: Principal,
         block: str | None = None, status: int = 200,
         headers: dict[str, str] | None = None, partial: bool = False) -> HTMLResponse:
    """Render ``template`` for ``who``; only ``block`` when HTMX asks for a fragment, or always
    with ``partial`` (a fragment with no page of its own: its context draws no page)."""
    language = i18n.chosen(request.cookies.get(i18n.COOKIE))
    full = {
        "who": who, "menu": nav_for(who), "path": request.url.path,
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "lang": language, "languages": i18n.LANGUAGES, "level_names": LEVEL_NAMES,
        "_": i18n.translator(language),
        **context,
    }
    fragment = block if block and (partial or request.headers.get("HX-Request") == "true") \
        else None
    drawn = templates.TemplateResponse(request, template, full, block_name=fragment,
                                       status_code=status, headers=headers)
    return cast(HTMLResponse, drawn)  # a _TemplateResponse, an HTMLResponse; typed as Response
