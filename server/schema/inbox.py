"""The inbox: what agents write beside a conversation and what each of them has read.

- ``Note``: an internal note on a conversation, seen by the agents who see it, never sent;
- ``CannedResponse``: a ready answer with a shortcut ("/prazo"), written by managers;
- ``ConversationRead``: how far one agent has read one conversation, so unread is per person
  (two agents on one team each see their own unread count).

The indexes the inbox's listing and its live updates lean on are declared here too, on the
messaging tables they index, so they live beside the code that needs them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from server.schema.base import Base, utcnow
from server.schema.messaging import Conversation, Message, MessageEvent


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # none: an API token
    author: Mapped[str] = mapped_column(String(120))  # the name shown, kept as it was written
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CannedResponse(Base):
    __tablename__ = "canned_responses"
    id: Mapped[int] = mapped_column(primary_key=True)
    shortcut: Mapped[str] = mapped_column(String(32), unique=True)  # without the slash
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConversationRead(Base):
    __tablename__ = "conversation_reads"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"),
                                                 primary_key=True, index=True)
    last_read_message_id: Mapped[int] = mapped_column(Integer, default=0)
    read_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# The inbox's order: latest customer activity first (a conversation not yet written in, its
# creation), then id, for a keyset page; the same expression the listing sorts by.
ACTIVITY = func.coalesce(Conversation.last_inbound_at, Conversation.created_at)
Index("ix_conversations_activity", ACTIVITY, Conversation.id)
# A conversation's latest message and its unread count: one index range per row shown.
Index("ix_messages_conversation_id", Message.conversation_id, Message.id)
# The live updates look back a few seconds over new journey steps and changed conversations.
Index("ix_message_events_at", MessageEvent.at)
Index("ix_conversations_updated_at", Conversation.updated_at)
