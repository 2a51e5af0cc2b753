"""Contacts and their identities: one customer stays one contact under every address."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, and_, bindparam, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.schema import Contact, ContactIdentity, Conversation, Message


def normalize_phone(digits: str) -> str:
    """Digits of a phone in one canonical form; Brazilian mobiles get their ninth digit.

    WhatsApp still reports many Brazilian mobiles in the old 8-digit form (55 DD XXXXXXXX);
    without this, one customer becomes two contacts.
    """
    digits = "".join(ch for ch in digits if ch.isdigit())
    if len(digits) == 12 and digits.startswith("55") and digits[4] in "6789":
        return digits[:4] + "9" + digits[4:]
    return digits


def _identities(phone: str | None, lid: str | None,
                address: str | None = None) -> list[tuple[str, str]]:
    """The identities to find a contact by. With neither phone nor @lid (a Cloud API user who
    hides the number behind a username writes under a business-scoped id), the address the
    gateway gave is the identity."""
    out = []
    if phone:
        out.append(("phone", normalize_phone(phone)))
    if lid:
        out.append(("lid", lid))
    if not out and address:
        out.append(("address", address))
    if not out:
        raise ValueError("a contact needs a phone, a lid or an address")
    return out


def _owners(session: Session, identities: list[tuple[str, str]]) -> list[int]:
    """The contacts these identities already belong to, oldest first."""
    owners = set()
    for kind, value in identities:
        found = session.scalar(select(ContactIdentity.contact_id).where(
            ContactIdentity.kind == kind, ContactIdentity.value == value))
        if found is not None:
            owners.add(found)
    return sorted(owners)


def _merge(session: Session, other: int, into: int) -> None:
    """Make contact ``other`` part of ``into``: one message told both an @lid and a phone that
    had been two contacts (the @lid written from first, the phone later, nothing linking them
    yet). Its identities and conversations move; where both wrote to one number, the messages
    join the older conversation. Nothing is lost; the emptied rows go."""
    session.execute(update(ContactIdentity).where(ContactIdentity.contact_id == other)
                    .values(contact_id=into))
    for conv in list(session.scalars(select(Conversation).where(
            Conversation.contact_id == other))):
        kept = session.scalar(select(Conversation).where(
            Conversation.contact_id == into, Conversation.instance_id == conv.instance_id))
        if kept is None:
            conv.contact_id = into
            continue
        session.execute(update(Message).where(Message.conversation_id == conv.id)
                        .values(conversation_id=kept.id))
        if conv.last_inbound_at and (kept.last_inbound_at is None
                                     or kept.last_inbound_at < conv.last_inbound_at):
            kept.last_inbound_at = conv.last_inbound_at
        if conv.mode == "human":  # an agent had taken over: the bot stays quiet
            kept.mode = "human"
        session.flush()
        session.delete(conv)
    gone, contact = session.get(Contact, other), session.get(Contact, into)
    if gone is not None and contact is not None:
        contact.name = contact.name or gone.name
        contact.phone = contact.phone or gone.phone
        session.flush()
        session.delete(gone)


class Known(NamedTuple):
    """What intake reads of a customer's conversation on a number (``known``)."""

    contact_id: int
    id: int
    address: str
    mode: str
    status: str
    agent_replied_at: datetime | None
    last_inbound_at: datetime | None


_CONV = Conversation.__table__.c
_IDENT = ContactIdentity.__table__.c
_KNOWN_COLUMNS = (_IDENT.contact_id, _CONV.id, _CONV.address, _CONV.mode, _CONV.status,
                  _CONV.agent_replied_at, _CONV.last_inbound_at)


_KNOWN_MANY = (select(_IDENT.kind, _IDENT.value, *_KNOWN_COLUMNS).select_from(
    ContactIdentity.__table__.outerjoin(Conversation.__table__, and_(
        _CONV.contact_id == _IDENT.contact_id, _CONV.instance_id == bindparam("instance_id"))))
    .where(tuple_(_IDENT.kind, _IDENT.value).in_(bindparam("pairs", expanding=True))))


def known(c: Connection, *, phone: str | None, lid: str | None, instance_id: int,
          address: str) -> Known | None:
    """The conversation on this number of the one contact that already owns every one of
    these identities, read in one Core statement on the caller's connection: this is every
    webhook's path, and the ORM's session and identity map cost more CPU than the query. None
    when anything is new (then ``resolve`` and ``conversation_for`` do the work,
    concurrent-safe)."""
    return known_many(c, instance_id, [(phone, lid, address)])[0]


def known_many(c: Connection, instance_id: int,
               senders: list[tuple[str | None, str | None, str]]) -> list[Known | None]:
    """``known`` for several customers (phone, lid, address) on one number in one statement:
    a batch of webhooks (``inbound_batch``) reads all its customers at once."""
    wanted = [_identities(phone, lid, address) for phone, lid, address in senders]
    pairs = list(dict.fromkeys(p for ids in wanted for p in ids))
    rows = {(r.kind, r.value): r for r in c.execute(
        _KNOWN_MANY, {"instance_id": instance_id, "pairs": pairs})}
    out: list[Known | None] = []
    for ids in wanted:
        # Each identity is unique, so one row per identity found: all of them, one contact.
        found = [rows.get(i) for i in ids]
        one = all(found) and len({r.contact_id for r in found if r is not None}) == 1
        first = found[0]
        out.append(Known(*first[2:]) if one and first is not None and first.id is not None
                   else None)
    return out


def conversation(c: Connection, conv_id: int) -> Known:
    """A conversation's row as ``known`` reads it, by id (after ``conversation_for``)."""
    return Known(*c.execute(select(_CONV.contact_id, *_KNOWN_COLUMNS[1:])
                            .where(_CONV.id == conv_id)).one())


def resolve(sessions: sessionmaker[Session], *, phone: str | None, lid: str | None,
            name: str | None, address: str | None = None) -> int:
    """The contact id for these identities, created once even under concurrent webhooks."""
    identities = _identities(phone, lid, address)
    for _ in range(3):
        try:
            with sessions.begin() as s:
                owners = _owners(s, identities)
                phone_id = next((v for k, v in identities if k == "phone"), None)
                if owners:
                    contact_id = owners[0]
                else:
                    contact = Contact(name=name, phone=phone_id)
                    s.add(contact)
                    s.flush()
                    contact_id = contact.id
                for other in owners[1:]:
                    _merge(s, other, into=contact_id)
                known = set(s.execute(select(ContactIdentity.kind, ContactIdentity.value).where(
                    ContactIdentity.contact_id == contact_id)).tuples())
                for kind, value in identities:
                    if (kind, value) not in known:
                        s.add(ContactIdentity(contact_id=contact_id, kind=kind, value=value))
                contact_obj = s.get(Contact, contact_id)
                if contact_obj is not None and name and not contact_obj.name:
                    contact_obj.name = name
                if contact_obj is not None and phone_id and not contact_obj.phone:
                    contact_obj.phone = phone_id  # an @lid contact whose phone is now told
            return contact_id
        except IntegrityError:
            continue  # another webhook created it first; look again
    raise RuntimeError("could not resolve contact after concurrent inserts")


def conversation_for(sessions: sessionmaker[Session], contact_id: int, instance_id: int,
                     address: str) -> int:
    """The conversation of a contact on an instance, created once; replies go to the address
    the customer last wrote from (the gateway knows which form of the number works)."""
    for _ in range(3):
        try:
            with sessions.begin() as s:
                conv = s.scalar(select(Conversation).where(
                    Conversation.contact_id == contact_id,
                    Conversation.instance_id == instance_id))
                if conv is None:
                    conv = Conversation(contact_id=contact_id, instance_id=instance_id,
                                        address=address)
                    s.add(conv)
                    s.flush()
                elif conv.address != address:
                    conv.address = address
                return conv.id
        except IntegrityError:
            continue
    raise RuntimeError("could not resolve conversation after concurrent inserts")
