"""One contact as its page and ``GET/PATCH /api/contacts/{id}`` show it: who it is, the
numbers it wrote to, its tags and fields, and its history; and the change of its name, tags
and fields in one go, all or nothing, every refusal by what it refers to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from flows.text import normalize
from server.schema import (
    Contact,
    ContactIdentity,
    Conversation,
    CustomField,
    Instance,
    Message,
    Team,
)
from server.services import access, contact_checks, contact_data
from server.services.access import Principal
from server.services.contact_checks import Refused, Why

HISTORY = 100  # messages a page shows, the newest


@dataclass(frozen=True)
class Thread:
    """One of the contact's conversations: the number it is on, where it stands."""

    id: int
    instance: str
    status: str
    team: str | None
    last_inbound_at: datetime | None


@dataclass(frozen=True)
class Card:
    id: int
    name: str | None
    phone: str | None
    created_at: datetime
    identities: list[tuple[str, str]]  # (kind, value): phone, lid or address
    threads: list[Thread]
    tags: list[str]
    fields: dict[str, str]  # by key; a field with no value is absent


@dataclass(frozen=True)
class Line:
    """A message of the history: ``author`` customer, assistant, agent, flow or system."""

    id: int
    at: datetime
    direction: str
    author: str
    text: str
    type: str
    instance: str


def card(s: Session, who: Principal, contact_id: int) -> Card:
    """The contact, with only the conversations ``who`` may see: a customer who wrote to two
    numbers may be one team's on one and another team's on the other."""
    contact = s.get(Contact, contact_id)
    if contact is None:
        raise LookupError(f"no contact {contact_id}")
    identities = s.execute(select(ContactIdentity.kind, ContactIdentity.value)
                           .where(ContactIdentity.contact_id == contact_id)
                           .order_by(ContactIdentity.id)).tuples().all()
    threads = [Thread(*row) for row in s.execute(
        select(Conversation.id, Instance.name, Conversation.status, Team.name,
               Conversation.last_inbound_at)
        .join(Instance, Instance.id == Conversation.instance_id)
        .outerjoin(Team, Team.id == Conversation.team_id)
        .where(Conversation.contact_id == contact_id, access.visible(who))
        .order_by(Conversation.id)).tuples()]
    return Card(contact.id, contact.name, contact.phone, contact.created_at, list(identities),
                threads, sorted(contact_data.tags_of(s, contact_id), key=normalize),
                contact_data.fields_of(s, contact_id))


def history(s: Session, who: Principal, contact_id: int, limit: int = HISTORY
            ) -> tuple[list[Line], bool]:
    """The contact's last ``limit`` messages on every number, in the conversations ``who`` may
    see, newest last; and whether there are older ones."""
    rows = s.execute(
        select(Message.id, Message.created_at, Message.direction, Message.author,
               Message.text, Message.type, Instance.name)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(Instance, Instance.id == Message.instance_id)
        .where(Conversation.contact_id == contact_id, access.visible(who))
        .order_by(Message.id.desc()).limit(limit + 1)).tuples().all()
    return [Line(*row) for row in reversed(rows[:limit])], len(rows) > limit


def update(s: Session, contact_id: int, *, name: str | None = None,
           tags: list[str] | None = None, fields: dict[str, str] | None = None) -> None:
    """Set what is given (None: leave it): the name, the tags (exactly these: missing ones
    added, others removed), field values ("" clears one). All is checked first; anything
    refused is ``Refused`` by ``name``, ``tags`` or ``fields.<key>``, and nothing changes."""
    contact = s.get(Contact, contact_id)
    if contact is None:
        raise LookupError(f"no contact {contact_id}")
    problems: dict[str, Why] = {}
    new_name = contact_checks.name(name) if name is not None else None
    if isinstance(new_name, Why):
        problems["name"] = new_name
    kept: list[str] = []
    for tag in tags or []:
        checked = contact_checks.tag(tag)
        if isinstance(checked, Why):
            problems["tags"] = checked
        else:
            kept.append(checked)
    values = check_fields(s, fields or {}, problems, prefix="fields.")
    if problems:
        raise Refused(problems)
    if isinstance(new_name, str):
        contact.name = new_name or None
    if tags is not None:
        wanted = {normalize(t) for t in kept}
        for old in contact_data.tags_of(s, contact_id) - set(kept):
            if normalize(old) not in wanted:
                contact_data.remove_tag(s, contact_id, old)
        for tag in kept:
            contact_data.set_tag(s, contact_id, tag)
    if values:
        contact_data.set_fields(s, contact_id, values)
    s.flush()


def check_fields(s: Session, values: dict[str, str], problems: dict[str, Why], *,
                 prefix: str = "") -> dict[str, str]:
    """The values as stored, by key; each refused one goes in ``problems`` (by prefix + key)
    and is left out."""
    known = {f.key: f for f in s.scalars(select(CustomField)
                                         .where(CustomField.key.in_(list(values))))}
    out = {}
    for key, value in values.items():
        if key not in known:
            problems[prefix + key] = Why("não há campo {key}", {"key": key})
            continue
        checked = contact_checks.field_value(known[key], value)
        if isinstance(checked, Why):
            problems[prefix + key] = checked
        else:
            out[key] = checked
    return out
