"""Contacts: the customers, the identities (phone, JID, @lid) they write under, the data a
company keeps on them (tags, typed custom fields), and the record of contacts merged.

The indexes are the contact filter's (``server.services.contact_search``): a tag's contacts,
a field's contacts (both (x_id, contact_id), covering), a field's values (the first 100
characters in lower case: a whole value of 1,000 could pass PostgreSQL's ~2.7 kB limit on an
index row), and the conversations' by instance and by last customer message; those two live
here, with the filter's other indexes, rather than in ``messaging``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, validates

from flows.text import normalize
from server.schema.base import Base, utcnow
from server.schema.messaging import Conversation

VALUE_PREFIX = 100  # how much of a field's value (in lower case) its index holds


class Contact(Base):
    """A customer; may be known under several identities (phone, JID, @lid).

    ``name_key`` is the name as a search compares it (``flows.text.normalize``: no case, no
    accents, punctuation as spaces), kept whenever the name is set: "joao" finds "João", which
    neither database's lower() does (SQLite's leaves "Ã" as it is)."""

    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    name_key: Mapped[str | None] = mapped_column(String(200), default=lambda ctx: _name_key(
        ctx.get_current_parameters().get("name")))  # a bulk insert of names gets its keys too
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @validates("name")
    def _keep_name_key(self, _key: str, name: str | None) -> str | None:
        self.name_key = _name_key(name)
        return name


def _name_key(name: str | None) -> str | None:
    return normalize(name)[:200] if name else None


class ContactIdentity(Base):
    """One address under which a contact writes; unique, so a customer is never split."""

    __tablename__ = "contact_identities"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_identity_kind_value"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # phone | lid | address (no phone, no lid)
    value: Mapped[str] = mapped_column(String(128))


class Tag(Base):
    """A label a company puts on contacts ("vip", "troca-pendente"); flows and agents set it."""

    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    color: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContactTag(Base):
    __tablename__ = "contact_tags"
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomField(Base):
    """A typed field every contact may have: text, number, date (dd/mm/aaaa) or choice."""

    __tablename__ = "custom_fields"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # as flows name it: fields.<key>
    label: Mapped[str] = mapped_column(String(120))
    type: Mapped[str] = mapped_column(String(16))  # text | number | date | choice
    choices: Mapped[list[Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContactField(Base):
    """One contact's value of one custom field, kept as the text a flow or a person gave,
    already checked against the field's type."""

    __tablename__ = "contact_fields"
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)
    field_id: Mapped[int] = mapped_column(ForeignKey("custom_fields.id"), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ContactMerge(Base):
    """One contact merged into another by a person: what moved and what the kept contact's own
    data won over (``detail``), so the merged contact's data can always be read back."""

    __tablename__ = "contact_merges"
    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)  # kept
    merged_id: Mapped[int] = mapped_column()  # the merged contact's id, gone now
    merged_name: Mapped[str | None] = mapped_column(String(200))
    merged_phone: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    by_name: Mapped[str] = mapped_column(String(120), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


Index("ix_contact_tags_tag_contact", ContactTag.tag_id, ContactTag.contact_id)
Index("ix_contact_fields_field_contact", ContactField.field_id, ContactField.contact_id)
Index("ix_contact_fields_field_value", ContactField.field_id,
      func.substr(func.lower(ContactField.value), 1, VALUE_PREFIX))
Index("ix_conversations_instance_contact", Conversation.instance_id, Conversation.contact_id)
Index("ix_conversations_last_inbound", Conversation.last_inbound_at, Conversation.contact_id)
