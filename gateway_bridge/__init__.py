"""Gateway adapters: one module per WhatsApp gateway, each with the functions of ``Adapter``.

Adding a gateway is one module here and one line in ``PROVIDERS``. ``send``'s ``ref`` is our
idempotency key for a message, the same on every try, for gateways that take one.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Protocol, cast

import httpx

from gateway_bridge import cloud, evolution, simulator, waha
from gateway_bridge.events import (
    AuthError,
    ConnectionUpdate,
    Event,
    Ignored,
    InboundMessage,
    InstanceConfig,
    Media,
    NotOffered,
    PayloadError,
    SendError,
    StatusUpdate,
)
from gateway_bridge.http import Outgoing

__all__ = [
    "Adapter",
    "AuthError",
    "ConnectionUpdate",
    "Event",
    "Ignored",
    "InboundMessage",
    "InstanceConfig",
    "Media",
    "NotOffered",
    "Outgoing",
    "PayloadError",
    "SendError",
    "StatusUpdate",
    "adapter_for",
    "PROVIDERS",
]


class Adapter(Protocol):
    """What every gateway module offers; each function is a plain module-level function.

    ``verify`` checks that a webhook comes from the instance's gateway (AuthError if not);
    ``parse`` reads it, with no signature check (``atende gateway parse`` uses it alone), and
    raises AuthError when the body names another instance (session, phone number id);
    ``send`` sends one message and returns the gateway's id for it; ``connection`` asks the
    gateway whether the number is linked; ``qr`` gives the code to pair it again; ``download``
    fetches an inbound message's file; ``recent`` lists a chat's latest messages as the gateway
    keeps them (reconciliation). What a gateway does not offer raises NotOffered.
    """

    def verify(self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str],
               instance: InstanceConfig) -> None: ...

    def parse(self, body: bytes, instance: InstanceConfig | None) -> list[Event]: ...

    def send(self, client: httpx.Client, instance: InstanceConfig, to: str, out: Outgoing, *,
             ref: str | None = None) -> str: ...

    def connection(self, client: httpx.Client, instance: InstanceConfig) -> ConnectionUpdate: ...

    def qr(self, client: httpx.Client, instance: InstanceConfig) -> str | None: ...

    def download(self, client: httpx.Client, instance: InstanceConfig, media: Media, *,
                 max_bytes: int) -> tuple[bytes, str | None]: ...

    def recent(self, client: httpx.Client, instance: InstanceConfig, chat: str, *,
               limit: int) -> list[InboundMessage]: ...


PROVIDERS: dict[str, ModuleType] = {"simulator": simulator, "evolution": evolution, "waha": waha,
                                    "cloud": cloud}


def adapter_for(provider: str) -> Adapter:
    """The adapter module of a provider; KeyError names the known ones."""
    try:
        return cast(Adapter, PROVIDERS[provider])
    except KeyError:
        known = sorted(PROVIDERS)
        raise KeyError(f"unknown gateway provider {provider!r}; known: {known}") from None
