"""Gateway adapters: one module per WhatsApp gateway, each with the same three functions.

``parse_webhook(body, headers, instance) -> list[Event]`` checks authenticity and normalizes;
``send_text(client, instance, to, text, ref=...) -> provider message id`` sends one message;
``ref`` is our idempotency key for it, the same on every try, for gateways that take one.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Protocol, cast

import httpx

from gateway_bridge import simulator
from gateway_bridge.events import (
    AuthError,
    Event,
    InboundMessage,
    InstanceConfig,
    PayloadError,
    SendError,
    StatusUpdate,
)

__all__ = [
    "Adapter",
    "AuthError",
    "Event",
    "InboundMessage",
    "InstanceConfig",
    "PayloadError",
    "SendError",
    "StatusUpdate",
    "adapter_for",
    "PROVIDERS",
]


class Adapter(Protocol):
    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], instance: InstanceConfig
    ) -> list[Event]: ...

    def send_text(
        self, client: httpx.Client, instance: InstanceConfig, to: str, text: str, *,
        ref: str | None = None,
    ) -> str: ...


PROVIDERS: dict[str, ModuleType] = {"simulator": simulator}


def adapter_for(provider: str) -> Adapter:
    """The adapter module of a provider; KeyError names the known ones."""
    try:
        return cast(Adapter, PROVIDERS[provider])
    except KeyError:
        known = sorted(PROVIDERS)
        raise KeyError(f"unknown gateway provider {provider!r}; known: {known}") from None
