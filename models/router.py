"""Try a chain of models in order: the first that answers wins; failures are kept."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from models.base import ChatMessage, Completion, ModelError, Provider
from models.spec import ModelSpec


@dataclass
class Routed:
    completion: Completion
    spec: ModelSpec
    messages: list[ChatMessage]  # the prompt the answering model was asked
    failures: list[tuple[str, str]] = field(default_factory=list)  # (model, error) tried before


class AllModelsFailed(ModelError):
    def __init__(self, failures: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{m}: {e}" for m, e in failures) or "no model configured")
        self.failures = failures


Prompt = Callable[[ModelSpec, Provider], list[ChatMessage]]  # the prompt as a model reads it


def complete(chain: Sequence[tuple[ModelSpec, Provider]],
             messages: list[ChatMessage] | Prompt, *, max_tokens: int,
             temperature: float) -> Routed:
    """The first successful completion along the chain (fallback on error or timeout); each
    model is asked ``messages``, or what ``messages(spec, provider)`` builds for it."""
    failures: list[tuple[str, str]] = []
    for spec, provider in chain:
        asked = messages(spec, provider) if callable(messages) else messages
        try:
            done = provider.complete(asked, max_tokens=max_tokens, temperature=temperature)
        except ModelError as exc:
            failures.append((spec.name, str(exc)))
            continue
        return Routed(done, spec, asked, failures)
    raise AllModelsFailed(failures)
