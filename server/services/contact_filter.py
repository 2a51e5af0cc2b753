"""The contact list's filter as a value: what a person asks for, checked at the boundary.

A ``ContactFilter`` is small and frozen; ``from_params`` reads it from a query string (the
contact page's form and ``GET /api/contacts`` share the parameters), refusing a malformed part
by its name. What needs the database (a field's type, a tag's or a number's existence) is
checked when the filter becomes SQL (``server.services.contact_search``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, get_args

from server.services.contact_checks import Refused, Why

TagMode = Literal["any", "all", "none"]
Op = Literal["eq", "contains", "gt", "lt", "set", "unset"]
OPS: dict[str, tuple[Op, ...]] = {  # what each field type may be asked
    "text": ("eq", "contains", "set", "unset"), "number": ("eq", "gt", "lt", "set", "unset"),
    "date": ("eq", "gt", "lt", "set", "unset"), "choice": ("eq", "set", "unset")}
MAX_TAGS = 20
MAX_CONDITIONS = 10


@dataclass(frozen=True)
class FieldCondition:
    """One custom field's condition: ``key`` as flows name it, ``value`` as a person writes it
    (checked against the field's type: "1.234,56" finds 1234.56)."""

    key: str
    op: Op = "eq"
    value: str = ""


@dataclass(frozen=True)
class ContactFilter:
    """What a list asks for; every part left at its default is no condition."""

    q: str = ""  # in the name, or in the phone's digits
    tags: tuple[str, ...] = ()
    tag_mode: TagMode = "any"
    fields: tuple[FieldCondition, ...] = ()
    instance: str | None = None  # has a conversation on this number (its name)
    last_from: date | None = None  # the customer's last message, on or after this day (UTC)
    last_to: date | None = None  # ... on or before this day
    open: bool | None = None  # has a conversation not closed (True), or none (False)


def from_params(params: Mapping[str, Sequence[str]]) -> ContactFilter:
    """The filter a query string asks for (``q``, ``tag`` repeated, ``tag_mode``, ``field`` /
    ``op`` / ``value`` repeated in step, ``instance``, ``last_from``, ``last_to`` as
    aaaa-mm-dd or dd/mm/aaaa, ``open`` 1 or 0). Blank parameters are no condition; a
    malformed one is ``Refused``, by its name (a condition's: ``field.N``)."""
    one = {k: (v[-1].strip() if v else "") for k, v in params.items()}
    problems: dict[str, Why] = {}
    tags = tuple(dict.fromkeys(t.strip() for t in params.get("tag", ()) if t.strip()))
    if len(tags) > MAX_TAGS:
        problems["tag"] = Why("no máximo {n} etiquetas", {"n": str(MAX_TAGS)})
    mode = one.get("tag_mode") or "any"
    if mode not in get_args(TagMode):
        problems["tag_mode"] = Why("escolha qualquer uma, todas ou nenhuma")
    keys, ops, values = (list(params.get(k, ())) for k in ("field", "op", "value"))
    conditions = []
    for i, key in enumerate(keys):
        op = ops[i].strip() if i < len(ops) else "eq"
        value = values[i] if i < len(values) else ""
        if not key.strip():
            continue
        if op not in get_args(Op):
            problems[f"field.{i}"] = Why("condição desconhecida: {op}", {"op": op})
        elif op not in ("set", "unset") and not value.strip():
            problems[f"field.{i}"] = Why("falta o valor")
        else:
            conditions.append(FieldCondition(key.strip(), op, value.strip()))  # type: ignore[arg-type]
    if len(conditions) > MAX_CONDITIONS:
        problems["field"] = Why("no máximo {n} condições", {"n": str(MAX_CONDITIONS)})
    days = {k: _day(one.get(k, ""), k, problems) for k in ("last_from", "last_to")}
    is_open = {"1": True, "0": False, "": None}.get(one.get("open", ""))
    if one.get("open", "") not in ("1", "0", ""):
        problems["open"] = Why("escolha sim, não ou tanto faz")
    if problems:
        raise Refused(problems)
    return ContactFilter(q=one.get("q", "")[:100], tags=tags, tag_mode=mode,  # type: ignore[arg-type]
                         fields=tuple(conditions), instance=one.get("instance") or None,
                         last_from=days["last_from"], last_to=days["last_to"], open=is_open)


def _day(text: str, name: str, problems: dict[str, Why]) -> date | None:
    for shape in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, shape).date() if text else None
        except ValueError:
            continue
    problems[name] = Why("não é uma data: escreva dd/mm/aaaa")
    return None
