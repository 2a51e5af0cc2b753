"""What a mode's handler is given: the conversation's claimed messages and their context."""

from __future__ import annotations

from dataclasses import dataclass

from models.base import ChatMessage
from server.schema import Instance, Message


@dataclass(frozen=True)
class Turn:
    conversation_id: int
    pending: list[Message]  # claimed, in order; the turn answers them as one
    instance: Instance
    mode: str  # ai | flow | human, as the conversation was when the turn began
    history: list[ChatMessage]  # the session before the turn, oldest first
    session_id: int  # the conversation's open session (server.services.chat_sessions)

    @property
    def text(self) -> str:
        """What the customer said in this turn: each message's text, a voice note's transcript."""
        return "\n".join(t for m in self.pending if (t := (m.transcript or m.text).strip()))
