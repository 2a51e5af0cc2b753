"""The one interface every LLM provider implements: chat messages in; text and usage out."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Completion:
    """A finished reply with the tokens it cost."""

    text: str
    finish_reason: str  # stop | length | error
    prompt_tokens: int
    completion_tokens: int
    model: str


class ModelError(RuntimeError):
    """A provider failed to produce a reply (after its own retries)."""


class ModelTimeout(ModelError):
    """The provider took longer than the configured timeout."""


class ModelConfigError(ValueError):
    """A model cannot be loaded as configured; the message names the setting to fix."""


class Provider(Protocol):
    """What the assistant needs from a model."""

    name: str

    def complete(
        self, messages: list[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Completion:
        """One reply to the conversation."""
        ...

    def stream(
        self, messages: list[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Generator[str, None, None]:
        """The reply as it is generated, piece by piece. Closing it stops the model: a reader
        who hangs up frees it (a local one's lock) and stops paying for it."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of a text under this model's tokenizer."""
        ...

    def close(self) -> None:
        """Free what the model holds (a swapped-out local model: its memory). Calls already
        running finish first; the provider is not used afterwards by whoever closed it."""
        ...
