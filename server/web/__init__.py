"""The web app's rendering: one layout, pt-BR with English, HTMX fragments.

Pages live in ``server.routes.pages``; they take their data from the same services as the JSON
API and hand it here to be drawn. ``page`` renders a whole page, or only one of its blocks when
HTMX asks for a fragment (``jinja2-fragments``), so a list filtered in place and the list on
first load are one template.
"""

from server.web.i18n import LANGUAGES, translator
from server.web.render import NavItem, nav_for, page

__all__ = ["LANGUAGES", "NavItem", "nav_for", "page", "translator"]
