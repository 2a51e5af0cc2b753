"""What the admin pages share: a service's refusal as words beside the field it came from.

The services decide what is valid and name the field (``contact_data.Invalid``, ``Conflict``,
``FieldError``); their words are the API's, in English. A page says it in the viewer's language:
each form has a table of what to say per field, and the refused value can be quoted
(``{value}``). A refusal no field claims is shown above the form (``form``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from babel.dates import format_timedelta
from fastapi import Request

from server.schema import utcnow
from server.services.contact_data import Conflict, FieldError
from server.web import i18n
from server.web.i18n import Gettext
from server.web.render import N_

GENERIC = N_("Valor não aceito: confira este campo.")


def refusal(exc: ValueError, values: Mapping[str, Any], _: Gettext,
            invalid: Mapping[str, str], taken: Mapping[str, str] | None = None
            ) -> dict[str, str]:
    """{field: what to tell} for a service's refusal of a form; ``invalid`` words each field's
    refusal, ``taken`` a conflict with what is stored (a name in use)."""
    if isinstance(exc, FieldError):
        fields = list(exc.problems)
    else:
        fields = [getattr(exc, "field", None) or "form"]
    table = taken if isinstance(exc, Conflict) and taken else invalid
    return {f: _(table.get(f) or invalid.get(f) or GENERIC).format(value=values.get(f, ""))
            for f in fields}


def tr(request: Request) -> Gettext:
    """``_`` in the viewer's language, for words a route chooses (a refusal's)."""
    return i18n.translator(i18n.chosen(request.cookies.get(i18n.COOKIE)))


def form_values(form: Any) -> dict[str, str]:
    """A submitted form (a pydantic model of text fields) as a dict, for drawing it again."""
    return {k: v for k, v in form.model_dump().items() if isinstance(v, str)}


def ago(when: datetime | None, lang: str) -> str:
    """"há 5 minutos" / "5 minutes ago"; "" when it never happened."""
    if when is None:
        return ""
    return format_timedelta(when - utcnow(), add_direction=True, threshold=1.0,
                            locale=lang.replace("-", "_"))


def base_url(request: Request, public_url: str) -> str:
    """This server's address as a gateway reaches it: ATENDE_PUBLIC_URL, else the request's."""
    return (public_url or str(request.base_url)).rstrip("/")


