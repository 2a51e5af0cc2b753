"""The contact list's filter: what a person asks for, as one SQL statement.

A ``ContactFilter`` (``server.services.contact_filter``, read from query parameters at the
boundary and re-exported here) is turned into one WHERE clause:
tags (any, all or none of some), custom-field conditions, an instance, a date range of the
customer's last message, an open conversation or not, and a name or phone search. Every part
is a semi-join on an indexed column (``server.schema.contacts`` names the indexes), so a page
of 50 and its count stay fast at 100,000 contacts on both databases.

What a caller sees is what ``server.services.access`` lets them: an admin every contact, anyone
else the contacts with a conversation they may see (``access.sees_contact``, as a clause).
Pages are in id order, newest first, by keyset (``after``: the last id seen), so page 200
costs what page 1 does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import (
    ColumnElement,
    Numeric,
    String,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    select,
    true,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from flows.text import normalize
from server.schema import (
    Contact,
    ContactField,
    ContactIdentity,
    ContactTag,
    Conversation,
    CustomField,
    Instance,
    Tag,
)
from server.schema.contacts import VALUE_PREFIX
from server.services import access
from server.services.access import Principal
from server.services.contact_checks import Refused, Why, field_value
from server.services.contact_filter import (
    OPS,
    ContactFilter,
    FieldCondition,
    TagMode,
    from_params,
)
from server.services.contacts import normalize_phone

__all__ = ["ContactFilter", "FieldCondition", "Page", "Row", "from_params", "pages", "search",
           "where"]
PAGE = 50


@dataclass(frozen=True)
class Row:
    id: int
    name: str | None
    phone: str | None
    tags: tuple[str, ...]
    last_inbound_at: datetime | None
    open: bool


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    total: int  # every contact the filter finds, not only this page
    next_after: int | None  # ``after`` for the next page; None on the last

@dataclass(frozen=True)
class _Set:
    """Contacts with a row of some table: ``column`` its contact id, ``criteria`` the row's.
    ``without``: the contacts with no such row."""

    column: InstrumentedAttribute[int]
    criteria: tuple[ColumnElement[bool], ...]
    without: bool = False

    def among(self) -> ColumnElement[bool]:
        """As the set the statement starts from: one index range, read once."""
        return Contact.id.in_(select(self.column).where(*self.criteria))

    def check(self) -> ColumnElement[bool]:
        """As a probe per contact, by the table's (contact_id, ...) key."""
        found = exists().where(self.column == Contact.id, *self.criteria)
        return not_(found) if self.without else found


def where(s: Session, who: Principal, f: ContactFilter) -> ColumnElement[bool]:
    """The filter, scoped to what ``who`` may see, as a WHERE clause on ``Contact``. A field
    or a value the fields refuse is ``Refused`` (by ``field.N``); an unknown instance too.

    The statement starts from the first set a contact must be in (a tag, a field's value, a
    number, the visible conversations: in that order, the likeliest smallest first) and
    probes the others per contact by their keys: on SQLite that beats intersecting lists."""
    sets: list[_Set | ColumnElement[bool]] = []
    if f.tags:
        sets += _tags(s, f.tags, f.tag_mode)
    problems: dict[str, Why] = {}
    for i, cond in enumerate(f.fields):
        found = _field(s, cond)
        if isinstance(found, Why):
            problems[f"field.{i}"] = found
        else:
            sets.append(found)
    convs = []
    if f.instance:
        instance_id = s.scalar(select(Instance.id).where(Instance.name == f.instance))
        if instance_id is None:
            problems["instance"] = Why("não há número {name}", {"name": f.instance})
        convs.append(Conversation.instance_id == instance_id)
    if f.last_from:
        convs.append(Conversation.last_inbound_at >= _midnight(f.last_from))
    if f.last_to:
        convs.append(Conversation.last_inbound_at < _midnight(f.last_to + timedelta(days=1)))
    if problems:
        raise Refused(problems)
    if convs:
        sets.append(_Set(Conversation.contact_id, tuple(convs)))
    if f.open is not None:
        sets.append(_Set(Conversation.contact_id, (Conversation.status != "closed",),
                         without=not f.open))
    if not who.at_least("admin"):
        sets.append(access.sees_contacts(who))
    if f.q.strip():
        sets.append(_search(f.q))
    first = next((x for x in sets if isinstance(x, _Set) and not x.without), None)
    return and_(true(), *(x if not isinstance(x, _Set) else x.among() if x is first
                          else x.check() for x in sets))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _tags(s: Session, names: tuple[str, ...], mode: TagMode) -> list[_Set | ColumnElement[bool]]:
    """A tag is named as flows name it ("VIP" is the tag "vip"). An unknown one is a tag no
    contact has: "all" then finds no one, and "any" or "none" go on with the others."""
    wanted = {normalize(n) for n in names}
    ids = [i for i, n in s.execute(select(Tag.id, Tag.name)).tuples() if normalize(n) in wanted]
    if mode == "all":
        if len(ids) < len(wanted):
            return [false()]
        return [_Set(ContactTag.contact_id, (ContactTag.tag_id == i,)) for i in ids]
    return [_Set(ContactTag.contact_id, (ContactTag.tag_id.in_(ids),), without=mode == "none")]


def _field(s: Session, cond: FieldCondition) -> _Set | Why:
    custom = s.scalar(select(CustomField).where(CustomField.key == cond.key))
    if custom is None:
        return Why("não há campo {key}", {"key": cond.key})
    if cond.op not in OPS[custom.type]:
        return Why("um campo deste tipo não aceita esta condição")
    of = ContactField.field_id == custom.id
    if cond.op in ("set", "unset"):
        return _Set(ContactField.contact_id, (of,), without=cond.op == "unset")
    if cond.op == "contains":
        return _Set(ContactField.contact_id, (of, _like(ContactField.value, cond.value)))
    value = field_value(custom, cond.value)
    if isinstance(value, Why):
        return value
    if cond.op == "eq":  # in any case (the others are kept in one spelling anyway)
        # The index's expression, its constants written out: planners match it by its text.
        prefix = func.substr(func.lower(ContactField.value), literal_column("1"),
                             literal_column(str(VALUE_PREFIX)))
        return _Set(ContactField.contact_id, (
            of, prefix == func.substr(func.lower(value), 1, VALUE_PREFIX),
            func.lower(ContactField.value) == func.lower(value)))
    # Only this field's values are read as numbers or dates: they were checked on the way in.
    if custom.type == "number":
        number = cast(case((of, ContactField.value)), Numeric)
        bound = cast(literal(value), Numeric)
        return _Set(ContactField.contact_id,
                    (of, number > bound if cond.op == "gt" else number < bound))
    sortable = (func.substr(ContactField.value, 7, 4, type_=String)  # dd/mm/aaaa as aaaammdd
                + func.substr(ContactField.value, 4, 2, type_=String)
                + func.substr(ContactField.value, 1, 2, type_=String))
    key = value[6:10] + value[3:5] + value[0:2]
    return _Set(ContactField.contact_id,
                (of, sortable > key if cond.op == "gt" else sortable < key))


def _like(column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None],
          text: str) -> ColumnElement[bool]:
    """``column`` holds ``text``, in any case, wildcards in it taken as they are. lower() LIKE,
    not ILIKE: twice as fast on PostgreSQL, and what SQLite makes of ILIKE anyway."""
    needle = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(f"%{needle}%", escape="\\")


def _search(q: str) -> _Set | ColumnElement[bool]:
    """A phone when ``q`` is one (digits, spaces and + - ( ) only, 4 digits or more: in any
    phone of the contact, a Brazilian mobile's ninth digit added as identities keep it), else
    the name, in any case and with or without accents ("joao" finds "João Araújo")."""
    text = q.strip()
    digits = "".join(c for c in text if c.isdigit())
    if len(digits) >= 4 and text.lstrip("+").translate(_PHONE_MARKS).isdigit():
        return _Set(ContactIdentity.contact_id, (
            ContactIdentity.kind == "phone",
            ContactIdentity.value.contains(normalize_phone(digits), autoescape=True)))
    key = normalize(text)  # letters and digits only: nothing LIKE would read as a wildcard
    return Contact.name_key.like(f"%{key}%") if key else _like(Contact.name, text)


_PHONE_MARKS = str.maketrans("", "", " -().")


def search(s: Session, who: Principal, f: ContactFilter, *, limit: int = PAGE,
           after: int | None = None, count: bool = True) -> Page:
    """One page of the contacts ``f`` finds that ``who`` may see, newest first, and how many
    it finds in all, in one statement (-1 when ``count`` is False). ``after``: the
    ``next_after`` of the page before."""
    clause = where(s, who, f)
    if count and f != ContactFilter():
        # The contacts found, once: the count and the page both read them. (With no
        # condition the plain form is better: the page walks the newest ids and stops.)
        found_ids = select(Contact.id.label("id")).where(clause).cte("found")
        counted = select(func.count()).select_from(found_ids).scalar_subquery()
        query = (select(Contact.id, Contact.name, Contact.phone, counted)
                 .join(found_ids, found_ids.c.id == Contact.id))
    else:
        counted = select(func.count()).select_from(Contact).where(clause).scalar_subquery()
        query = select(Contact.id, Contact.name, Contact.phone,
                       counted if count else literal(-1)).where(clause)
    if after is not None:
        query = query.where(Contact.id < after)
    found = s.execute(query.order_by(Contact.id.desc()).limit(limit + 1)).tuples().all()
    total = found[0][3] if found else s.scalar(counted.select()) if count and after else 0
    ids = [row[0] for row in found[:limit]]
    tags, convs = tags_by_contact(s, ids), _activity(s, ids)
    rows = [Row(i, name, phone, tags.get(i, ()), *convs.get(i, (None, False)))
            for i, name, phone, _ in found[:limit]]
    return Page(rows, int(total or 0), ids[-1] if len(found) > limit else None)


def pages(s: Session, who: Principal, f: ContactFilter, *,
          batch: int = 500) -> Iterator[list[Row]]:
    """Every contact the filter finds, a page at a time (an export streams these)."""
    after = None
    while True:
        page = search(s, who, f, limit=batch, after=after, count=False)
        yield page.rows
        if page.next_after is None:
            return
        after = page.next_after


def tags_by_contact(s: Session, ids: list[int]) -> dict[int, tuple[str, ...]]:
    out: dict[int, list[str]] = {}
    for contact_id, name in s.execute(
            select(ContactTag.contact_id, Tag.name).join(Tag, Tag.id == ContactTag.tag_id)
            .where(ContactTag.contact_id.in_(ids)).order_by(Tag.name)).tuples():
        out.setdefault(contact_id, []).append(name)
    return {k: tuple(v) for k, v in out.items()}


def _activity(s: Session, ids: list[int]) -> dict[int, tuple[datetime | None, bool]]:
    """Each contact's last customer message and whether a conversation of it is open."""
    rows = s.execute(select(Conversation.contact_id, func.max(Conversation.last_inbound_at),
                            func.max(case((Conversation.status != "closed", 1), else_=0)))
                     .where(Conversation.contact_id.in_(ids))
                     .group_by(Conversation.contact_id)).tuples()
    return {i: (aware(last), bool(opened)) for i, last, opened in rows}


def aware(at: datetime | str | None) -> datetime | None:
    """A time an aggregate read back: SQLite's is naive UTC, or text."""
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at
