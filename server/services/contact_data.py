"""Contacts' data: the tags a company puts on them and their typed custom fields.

Flows name tags freely, so setting a tag creates it. Names compare as flow conditions compare
them (``flows.text.normalize``: no case, accents or punctuation): "VIP" lands on the tag "vip".
Concurrent writers are settled by unique keys with ``INSERT ... ON CONFLICT`` on both databases:
two transactions creating one tag make it once, neither fails, and the caller's transaction goes
on. Not a savepoint and a retry: pysqlite begins no transaction before a SAVEPOINT, so on SQLite
its RELEASE would commit the caller's work halfway.

A field's value is kept as text, checked against its type and normalized as flow questions are
(``flows.answers``): a number as a plain decimal ("1234.56" from "1.234,56"), a date as
dd/mm/aaaa, a choice in the choice's own spelling.
"""

from __future__ import annotations

import re
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flows.answers import check
from flows.text import normalize
from server.schema import Base, Contact, ContactField, ContactTag, CustomField, Tag, utcnow

TYPES = ("text", "number", "date", "choice")
KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # as flows name them: fields.<key>
MAX_VALUE = 1000
MAX_CHOICES = 100
COLOR = re.compile(r"^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$")
_WHY = {"number": "is not a number: write it as 1234,56, 1.234,56 or 1234.56",
        "date": "is not a date: write dd/mm/aaaa (25/12/2024), a day the calendar has",
        "text": "is empty"}


class FieldError(ValueError):
    """Values refused, each by its field's key: an unknown field, or a value its type does not
    take. ``problems`` maps each key to why, so an API can answer per field."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {why}" for k, why in problems.items()))
        self.problems = problems


class Invalid(ValueError):
    """A value refused, naming the form field it came in (``field``), so a page can show why
    beside that field; to the API it is the ValueError it always was, in the same words."""

    def __init__(self, why: str, field: str | None = None) -> None:
        super().__init__(why)
        self.field = field


class Conflict(Invalid):
    """Refused by what is stored: a name taken, a type change while contacts hold values."""


def insert_new(s: Session, table: type[Base], values: dict[str, Any], keys: list[str]) -> bool:
    """Insert a row unless one with the same unique ``keys`` exists; True if it was inserted.
    A duplicate raises nothing, so the caller's transaction goes on; on PostgreSQL a row another
    transaction is inserting is waited for, then counted as there."""
    # A row back if inserted: psycopg's rowcount for this statement is -1.
    return s.execute(_insert(s, table).values(**values).on_conflict_do_nothing(
        index_elements=keys).returning(literal_column("1"))).first() is not None


def _insert(s: Session, table: type[Base]) -> postgresql.Insert | sqlite.Insert:
    return (postgresql if s.get_bind().dialect.name == "postgresql" else sqlite).insert(table)


def require_contact(s: Session, contact_id: int) -> None:
    if s.get(Contact, contact_id) is None:
        raise LookupError(f"no contact {contact_id}")


def tags_of(s: Session, contact_id: int) -> set[str]:
    """The names of the contact's tags."""
    return set(s.scalars(select(Tag.name).join(ContactTag, ContactTag.tag_id == Tag.id)
                         .where(ContactTag.contact_id == contact_id)))


def set_tag(s: Session, contact_id: int, name: str) -> bool:
    """Tag the contact, creating the tag if no tag has this name; True if newly set. A name
    without a letter or a digit (it would equal every such name) or over 64 characters is a
    ValueError: flows should refuse it when saved (``tag_name`` is the rule)."""
    require_contact(s, contact_id)
    tag_id = _tag_id(s, name)
    if tag_id is None:
        name = tag_name(name)
        insert_new(s, Tag, {"name": name, "created_at": utcnow()}, ["name"])
        tag_id = s.scalars(select(Tag.id).where(Tag.name == name)).one()
    return insert_new(s, ContactTag, {"contact_id": contact_id, "tag_id": tag_id,
                                      "created_at": utcnow()}, ["contact_id", "tag_id"])


def remove_tag(s: Session, contact_id: int, name: str) -> bool:
    """Untag the contact; True if it had the tag."""
    tag_id = _tag_id(s, name)
    if tag_id is None:
        return False
    gone = s.execute(delete(ContactTag).where(ContactTag.contact_id == contact_id,
                                              ContactTag.tag_id == tag_id))
    return bool(cast(CursorResult[Any], gone).rowcount)


def tag_name(name: str) -> str:
    """A tag's name as kept: spaces collapsed; a ValueError when it cannot be one."""
    name = " ".join(name.split())
    if not normalize(name):
        raise Invalid(f"tag name {name!r} needs a letter or a digit", "name")
    if len(name) > 64:
        raise Invalid("a tag name has at most 64 characters", "name")
    return name


def tag_color(color: str | None) -> str | None:
    """A tag's color as kept (#rgb or #rrggbb), None for none; Invalid else."""
    if color is None or not color.strip():
        return None
    if not COLOR.match(color.strip()):
        raise Invalid(f"color {color!r}: write it as #rgb or #rrggbb", "color")
    return color.strip()


def list_tags(s: Session) -> list[tuple[Tag, int]]:
    """Every tag, by name, with how many contacts have it."""
    counts = (select(ContactTag.tag_id, func.count().label("n")).group_by(ContactTag.tag_id)
              .subquery())
    rows = s.execute(select(Tag, func.coalesce(counts.c.n, 0))
                     .outerjoin(counts, counts.c.tag_id == Tag.id).order_by(Tag.name))
    return [(tag, int(n)) for tag, n in rows.tuples()]


def create_tag(s: Session, name: str, color: str | None = None) -> Tag:
    name = tag_name(name)
    _free(s, name, None)
    tag = Tag(name=name, color=tag_color(color))
    s.add(tag)
    flush_or_conflict(s, f"a tag {name!r} exists", "name")
    return tag


def update_tag(s: Session, tag_id: int, changes: dict[str, Any]) -> Tag:
    """Rename a tag (its contacts keep it) or change its color; a color of None clears it."""
    tag = _tag(s, tag_id)
    if changes.get("name") is not None:
        name = tag_name(changes["name"])
        _free(s, name, tag.id)
        tag.name = name
    if "color" in changes:
        tag.color = tag_color(changes["color"])
    flush_or_conflict(s, f"a tag {tag.name!r} exists", "name")
    return tag


def delete_tag(s: Session, tag_id: int) -> None:
    """Delete a tag: its contacts lose it and stay."""
    tag = _tag(s, tag_id)
    s.execute(delete(ContactTag).where(ContactTag.tag_id == tag.id))
    s.delete(tag)
    s.flush()


def _tag_id(s: Session, name: str) -> int | None:
    """The tag this name means: the same name, else one equal once normalized."""
    exact = s.scalar(select(Tag.id).where(Tag.name == " ".join(name.split())))
    if exact is not None:
        return exact
    key = normalize(name)
    return next((i for i, n in s.execute(select(Tag.id, Tag.name)).tuples()
                 if key and normalize(n) == key), None)


def _free(s: Session, name: str, own: int | None) -> None:
    found = _tag_id(s, name)
    if found is not None and found != own:
        taken = s.scalars(select(Tag.name).where(Tag.id == found)).one()
        raise Conflict(f"a tag {taken!r} exists (names compare without case or accents)",
                       "name")


def field_keys(s: Session) -> set[str]:
    return set(s.scalars(select(CustomField.key)))


def list_fields(s: Session) -> list[CustomField]:
    return list(s.scalars(select(CustomField).order_by(CustomField.key)))


def fields_of(s: Session, contact_id: int) -> dict[str, str]:
    """The contact's values, by field key (fields it has no value for are absent)."""
    rows = s.execute(select(CustomField.key, ContactField.value)
                     .join(ContactField, ContactField.field_id == CustomField.id)
                     .where(ContactField.contact_id == contact_id))
    return dict(rows.tuples().all())


def check_value(field: CustomField, value: str) -> str:
    """The value as stored ("" clears it), or a ValueError saying why the type refuses it."""
    value = value.strip()
    if not value:
        return ""
    if len(value) > MAX_VALUE:
        raise ValueError(f"has over {MAX_VALUE} characters")
    if field.type == "choice":
        choices = field.choices or []
        found = {normalize(c): c for c in choices}.get(normalize(value))
        if found is None:
            raise ValueError(f"{value!r} is not one of the choices: {', '.join(choices)}")
        return str(found)
    checked = check(field.type, value)
    if checked is None:
        raise ValueError(f"{value!r} {_WHY[field.type]}")
    return checked


def set_field(s: Session, contact_id: int, key: str, value: str) -> str:
    """Set one of the contact's fields; the value as stored ("" cleared it). An unknown key or a
    value the field's type refuses is a FieldError."""
    return set_fields(s, contact_id, {key: value})[key]


def set_fields(s: Session, contact_id: int, values: dict[str, str]) -> dict[str, str]:
    """Set several fields, all or none: every value is checked before any is stored, and a
    FieldError names each refused key. The values as stored, by key."""
    require_contact(s, contact_id)
    # FOR SHARE (PostgreSQL): a type change or deletion meanwhile waits for these values and
    # sees them, or goes first and they are checked against it. SQLite locks no rows: there a
    # type change between this read and the write below is not seen.
    fields = {f.key: f for f in s.scalars(
        select(CustomField).where(CustomField.key.in_(list(values)))
        .with_for_update(read=True).execution_options(populate_existing=True))}
    stored, problems = {}, {}
    for key, value in values.items():
        if key not in fields:
            problems[key] = f"no custom field {key!r}; create it first (/api/fields)"
            continue
        try:
            stored[key] = check_value(fields[key], value)
        except ValueError as exc:
            problems[key] = str(exc)
    if problems:
        raise FieldError(problems)
    for key, value in stored.items():
        _store(s, contact_id, fields[key].id, value)
    return stored


def create_field(s: Session, key: str, label: str, type: str,
                 choices: list[str] | None = None) -> CustomField:
    if not KEY.match(key):
        raise Invalid(f"field key {key!r}: letters, digits, _ and -, up to 64", "key")
    field = CustomField(key=key, label=_label(label), type=type, choices=_choices(type, choices))
    s.add(field)
    flush_or_conflict(s, f"a field {key!r} exists", "key")
    return field


def update_field(s: Session, key: str, changes: dict[str, Any]) -> CustomField:
    """Change a field's label, type or choices. Its type stays while contacts hold values (they
    were checked against it); a choice they hold stays, and one respelled ("ouro" to "Ouro")
    is respelled in their values too."""
    field = get_field(s, key, lock=True)
    kind, choices = changes.get("type") or field.type, changes.get("choices")
    new = _choices(kind, field.choices if choices is None and kind == field.type else choices)
    held = list(s.scalars(select(ContactField.value).where(ContactField.field_id == field.id)
                          .distinct()))
    if kind != field.type and held:
        raise Conflict(f"field {key!r} has values on contacts, so its type stays {field.type}: "
                       "clear them first, or make a new field", "type")
    spelled = {normalize(c): c for c in new or []}
    for value in held if kind == "choice" else []:
        if normalize(value) not in spelled:
            raise Conflict(f"contacts hold {value!r}, which the new choices lack: clear it "
                           "from them first", "choices")
        if spelled[normalize(value)] != value:
            s.execute(update(ContactField).where(ContactField.field_id == field.id,
                                                 ContactField.value == value)
                      .values(value=spelled[normalize(value)], updated_at=utcnow()))
    if changes.get("label") is not None:
        field.label = _label(changes["label"])
    field.type, field.choices = kind, new
    s.flush()
    return field


def delete_field(s: Session, key: str) -> None:
    """Delete a field and every contact's value of it."""
    field = get_field(s, key, lock=True)
    s.execute(delete(ContactField).where(ContactField.field_id == field.id))
    s.delete(field)
    s.flush()


def get_field(s: Session, key: str, *, lock: bool = False) -> CustomField:
    """A field by key. ``lock``: held until the transaction ends, on PostgreSQL, against values
    being stored meanwhile (``set_fields`` reads its fields FOR SHARE)."""
    query = select(CustomField).where(CustomField.key == key)
    field = s.scalar(query.with_for_update().execution_options(populate_existing=True)
                     if lock else query)
    if field is None:
        raise LookupError(f"no custom field {key!r}")
    return field


def _store(s: Session, contact_id: int, field_id: int, value: str) -> None:
    where = (ContactField.contact_id == contact_id, ContactField.field_id == field_id)
    if not value:
        s.execute(delete(ContactField).where(*where))
        return
    now = utcnow()
    s.execute(_insert(s, ContactField)
              .values(contact_id=contact_id, field_id=field_id, value=value, updated_at=now)
              .on_conflict_do_update(index_elements=["contact_id", "field_id"],
                                     set_={"value": value, "updated_at": now}))


def _label(label: str) -> str:
    label = " ".join(label.split())
    if not label or len(label) > 120:
        raise Invalid("a field's label has 1 to 120 characters", "label")
    return label


def _choices(kind: str, choices: list[Any] | None) -> list[str] | None:
    """A field's type checked, and its choices: some for a choice field, each a distinct text
    once normalized; none for the other types."""
    if kind not in TYPES:
        raise Invalid(f"field type {kind!r} is not one of {', '.join(TYPES)}", "type")
    if kind != "choice":
        if choices:
            raise Invalid("choices are for fields of type choice", "choices")
        return None
    if not choices or len(choices) > MAX_CHOICES:
        raise Invalid(f"a field of type choice needs its choices, 1 to {MAX_CHOICES}", "choices")
    seen: dict[str, str] = {}
    for choice in choices:
        text = " ".join(choice.split()) if isinstance(choice, str) else ""
        if not normalize(text) or len(text) > 120:
            raise Invalid(f"choice {choice!r}: a text of 1 to 120 characters with a letter "
                          "or a digit", "choices")
        if normalize(text) in seen:
            raise Invalid(f"choices {seen[normalize(text)]!r} and {text!r} are one choice "
                          "(compared without case or accents)", "choices")
        seen[normalize(text)] = text
    return list(seen.values())


def _tag(s: Session, tag_id: int) -> Tag:
    tag = s.get(Tag, tag_id)
    if tag is None:
        raise LookupError(f"no tag {tag_id}")
    return tag


def flush_or_conflict(s: Session, taken: str, field: str | None = None) -> None:
    """Flush; a unique key broken (by a concurrent writer) is a Conflict on ``field``. The
    transaction is then spoiled: the caller's ``begin()`` rolls it back."""
    try:
        s.flush()
    except IntegrityError:
        raise Conflict(taken, field) from None
