"""Contacts: the customers, the identities (phone, JID, @lid) they write under, and the data a
company keeps on them (tags, typed custom fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.schema.base import Base, utcnow


class Contact(Base):
    """A customer; may be known under several identities (phone, JID, @lid)."""

    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


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
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id"), primary_key=True, index=True)
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
    field_id: Mapped[int] = mapped_column(ForeignKey("custom_fields.id"), primary_key=True,
                                          index=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
