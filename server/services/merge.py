"""Two contacts that are one customer, made one by a person: B is merged into A.

Everything of B moves to A in one transaction, and nothing is lost: its identities (so the
customer writing from any of them lands on A), its conversations with their messages, its tags
(the union) and its fields (A's value wins where both have one; B's is kept in the record).
A conversation of B on a number where A has one too cannot stay (one conversation per contact
and number): its messages join A's, which keeps its id; it takes the later last message, and
B's state where A's is closed and B's is not (a customer in a queue stays in it). B's open
chat session, if any, is closed first (one open per conversation). Any other row that points at
B or at its joined conversation is pointed at A or at A's conversation, whoever added it.

What B was, and what moved, stays in a ``ContactMerge`` row: its name, phone, identities,
conversations, the tags and fields it brought, and its values that A's won over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, delete, exists, func, select, update
from sqlalchemy.orm import Session

from server.schema import (
    Base,
    ChatSession,
    Contact,
    ContactField,
    ContactIdentity,
    ContactMerge,
    ContactTag,
    Conversation,
    CustomField,
    Message,
    Tag,
    utcnow,
)
from server.services import contact_search
from server.services.access import Principal
from server.services.contact_checks import Refused, Why
from server.services.contact_search import ContactFilter

_HELD = ("status", "team_id", "assignee_id", "mode", "handed_off_at", "agent_replied_at")


def merge(s: Session, who: Principal, into: int, other: int) -> ContactMerge:
    """Merge contact ``other`` into ``into``, in the caller's transaction; the record of it.
    The same contact twice is ``Refused``; an unknown one a LookupError."""
    if into == other:
        raise Refused({"other": Why("um contato não se junta a ele mesmo")})
    locked = {i: _locked(s, i) for i in sorted((into, other))}  # one order: no deadlock
    a, b = locked[into], locked[other]
    identities = [[k, v] for k, v in s.execute(
        select(ContactIdentity.kind, ContactIdentity.value)
        .where(ContactIdentity.contact_id == b.id).order_by(ContactIdentity.id)).tuples()]
    detail = {"identities": identities, "tags": _tags(s, a.id, b.id), **_fields(s, a.id, b.id),
              "conversations": _conversations(s, a.id, b.id)}
    _repoint(s, "contacts", b.id, a.id)  # identities, and what else points at B
    a.name, a.phone = a.name or b.name, a.phone or b.phone
    record = ContactMerge(contact_id=a.id, merged_id=b.id, merged_name=b.name,
                          merged_phone=b.phone, by_user_id=who.user_id, by_name=who.name,
                          at=utcnow(), detail=detail)
    s.flush()
    s.delete(b)
    s.add(record)
    s.flush()
    return record


def _locked(s: Session, contact_id: int) -> Contact:
    """The contact, held until the transaction ends. A write comes first, as SQLite's reads
    take no lock: of two merges of one contact at once (a double click), the second waits
    here for the first, then finds it gone (a LookupError), where a read would have found it
    still there and recorded the merge twice."""
    held = s.execute(update(Contact).where(Contact.id == contact_id)
                     .values(phone=Contact.phone)).rowcount  # type: ignore[attr-defined]
    contact = s.scalar(select(Contact).where(Contact.id == contact_id)
                       .execution_options(populate_existing=True)) if held else None
    if contact is None:
        raise LookupError(f"no contact {contact_id}")
    return contact


def _tags(s: Session, a: int, b: int) -> list[str]:
    """B's tags A lacked, now A's; B's tag rows go."""
    mine = select(ContactTag.tag_id).where(ContactTag.contact_id == a)
    brought = list(s.execute(select(ContactTag.tag_id, Tag.name)
                             .join(Tag, Tag.id == ContactTag.tag_id)
                             .where(ContactTag.contact_id == b, ContactTag.tag_id.not_in(mine)))
                   .tuples())
    s.execute(delete(ContactTag).where(ContactTag.contact_id == b))
    s.add_all(ContactTag(contact_id=a, tag_id=i, created_at=utcnow()) for i, _ in brought)
    s.flush()
    return sorted(n for _, n in brought)


def _fields(s: Session, a: int, b: int) -> dict[str, dict[str, str]]:
    """B's values where A had none move to A; where both had one, A's stays and B's is told."""
    rows = s.execute(select(CustomField.key, ContactField.contact_id, ContactField.value,
                            ContactField.field_id)
                     .join(CustomField, CustomField.id == ContactField.field_id)
                     .where(ContactField.contact_id.in_([a, b]))).tuples().all()
    held = {field_id: value for _, c, value, field_id in rows if c == a}
    brought, lost = {}, {}
    for key, c, value, field_id in rows:
        if c != b:
            continue
        if field_id in held:
            if held[field_id] != value:
                lost[key] = value
        else:
            brought[key] = value
            s.add(ContactField(contact_id=a, field_id=field_id, value=value,
                               updated_at=utcnow()))
    s.execute(delete(ContactField).where(ContactField.contact_id == b))
    s.flush()
    return {"fields": brought, "fields_not_kept": lost}


def _conversations(s: Session, a: int, b: int) -> list[dict[str, Any]]:
    """Move B's conversations to A; one on a number A has too joins A's (module docstring)."""
    out = []
    for conv in list(s.scalars(select(Conversation).where(Conversation.contact_id == b)
                               .order_by(Conversation.id))):
        kept = s.scalar(select(Conversation).where(Conversation.contact_id == a,
                                                   Conversation.instance_id == conv.instance_id))
        messages = s.scalar(select(func.count()).select_from(Message)
                            .where(Message.conversation_id == conv.id)) or 0
        out.append({"id": conv.id, "instance_id": conv.instance_id, "messages": messages,
                    "joined": kept.id if kept else None, "status": conv.status})
        if kept is None:
            conv.contact_id = a
            continue
        s.execute(update(ChatSession).where(ChatSession.conversation_id == conv.id,
                                            ChatSession.status == "open")
                  .values(status="closed", closed_at=utcnow(), closed_by="merge"))
        if kept.status == "closed" and conv.status != "closed":
            for name in _HELD:
                setattr(kept, name, getattr(conv, name))
        if conv.last_inbound_at and (kept.last_inbound_at is None
                                     or kept.last_inbound_at < conv.last_inbound_at):
            kept.last_inbound_at = conv.last_inbound_at
        s.flush()
        _repoint(s, "conversations", conv.id, kept.id)
        s.delete(conv)
        s.flush()
    return out


def _repoint(s: Session, table: str, old: int, new: int) -> None:
    """Every row of any table that points at ``table``'s row ``old`` now points at ``new``
    (messages, chat sessions, notes, and what later tables keep on a contact or a
    conversation). Where the pointer is part of a row's key (a person's read marker of a
    conversation), the merged one's row goes if the kept one has its own."""
    target = Base.metadata.tables[table].c.id
    for other in Base.metadata.sorted_tables:
        for fk in _pointing(other, target):
            rest = [c for c in other.primary_key.columns if c is not fk]
            if fk.primary_key and rest:  # a row per (new, rest) at most: the kept one stays
                twin = other.alias()
                s.execute(delete(other).where(fk == old, exists().where(
                    twin.c[fk.name] == new, *(twin.c[c.name] == c for c in rest))))
            s.execute(update(other).where(fk == old).values({fk.name: new}))
    s.flush()


def _pointing(table: Table, target: Any) -> list[Any]:
    return [fk.parent for fk in table.foreign_keys if fk.column is target]


@dataclass(frozen=True)
class Candidate:
    id: int
    name: str | None
    phone: str | None
    why: Why


def duplicates(s: Session, who: Principal, contact_id: int, limit: int = 5) -> list[Candidate]:
    """Contacts that may be this one too, among those ``who`` sees: the same name (no case),
    or a phone ending in the same 8 digits (a number with and without the ninth digit, or
    written with another country code)."""
    contact = s.get(Contact, contact_id)
    if contact is None:
        return []
    seen = contact_search.where(s, who, ContactFilter())
    found: dict[int, Candidate] = {}
    tails = {v[-8:] for v in s.scalars(select(ContactIdentity.value).where(
        ContactIdentity.contact_id == contact_id, ContactIdentity.kind == "phone"))
        if len(v) >= 8}
    for tail in sorted(tails):
        for c in s.scalars(select(Contact).where(seen, Contact.id != contact_id, Contact.id.in_(
                select(ContactIdentity.contact_id).where(
                    ContactIdentity.kind == "phone", ContactIdentity.value.endswith(tail))))
                .limit(limit)):
            found.setdefault(c.id, Candidate(c.id, c.name, c.phone,
                                             Why("o telefone termina igual")))
    if contact.name and contact.name.strip():
        for c in s.scalars(select(Contact).where(
                seen, Contact.id != contact_id,
                func.lower(Contact.name) == contact.name.strip().lower()).limit(limit)):
            found.setdefault(c.id, Candidate(c.id, c.name, c.phone, Why("mesmo nome")))
    return list(found.values())[:limit]
