"""Try a chain of models in order: the first that answers wins; failures are kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from models.base import ChatMessage, Completion, ModelError, Provider
from models.spec import ModelSpec


@dataclass
class Routed:
    completion: Completion
    spec: ModelSpec
    failures: list[tuple[str, str]] = field(default_factory=list)  # (model, error) tried before


class AllModelsFailed(ModelError):
    def __init__(self, failures: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{m}: {e}" for m, e in failures) or "no model configured")
        self.failures = failures


def complete(chain: Sequence[tuple[ModelSpec, Provider]], messages: list[ChatMessage], *,
             max_tokens: int, temperature: float) -> Routed:
    """The first successful completion along the chain (fallback on error or timeout)."""
    failures: list[tuple[str, str]] = []
    for spec, provider in chain:
        try:
            done = provider.complete(messages, max_tokens=max_tokens, temperature=temperature)
        except ModelError as exc:
            failures.append((spec.name, str(exc)))
            continue
        return Routed(done, spec, failures)
    raise AllModelsFailed(failures)
