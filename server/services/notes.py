"""Internal notes: what agents tell each other about a conversation ("cliente já trocou uma
vez", "aguardando a transportadora"). A note is shown in the conversation's history to whoever
sees the conversation and is never sent to the customer: it goes through no outbox and no
gateway. Notes are kept, as messages are; the name shown is the writer's at the time.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.schema import Conversation, Note, utcnow
from server.services.access import Principal
from server.services.contact_data import Invalid

MAX_TEXT = 4000


def add(s: Session, who: Principal, conversation_id: int, text: str) -> Note:
    """Write a note; an empty or over-long one is ``Invalid`` (field ``text``), kept nowhere."""
    conv = s.get(Conversation, conversation_id)
    if conv is None:
        raise LookupError(f"conversation {conversation_id} not found")
    clean = text.strip()
    if not clean:
        raise Invalid("write the note first", "text")
    if len(clean) > MAX_TEXT:
        raise Invalid(f"a note has at most {MAX_TEXT} characters ({len(clean)} given)", "text")
    note = Note(conversation_id=conversation_id, user_id=who.user_id,
                author=(who.name or (f"token {who.token}" if who.token else ""))[:120],
                text=clean)
    s.add(note)
    conv.updated_at = utcnow()  # the inbox's viewers see it come
    s.flush()
    return note


def of(s: Session, conversation_id: int) -> list[Note]:
    return list(s.scalars(select(Note).where(Note.conversation_id == conversation_id)
                          .order_by(Note.id)))
