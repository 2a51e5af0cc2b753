"""WAHA's message ids and timestamps.

A message id is ``{fromMe}_{chatId}_{id}``, with ``_{participant}`` after it in groups on some
engines (``true_5511987654321@c.us_3EB0C767D26A1D5F6F2A``): the same string in ``message``,
``message.ack`` and a send's answer, so it is the id we store. Baileys' ``@s.whatsapp.net`` is
WAHA's ``@c.us``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway_bridge.events import PayloadError


def timestamp(value: Any, fallback_ms: Any = None) -> datetime:
    """Seconds since the epoch (a float on reactions); a value of milliseconds (some engines,
    the envelope's own ``timestamp``) is read as such. None: the envelope's, else now."""
    for raw, scale in ((value, 1.0), (fallback_ms, 1000.0)):
        if isinstance(raw, dict) and isinstance(raw.get("low"), int):  # a protobuf Long
            raw = (raw["low"] & 0xFFFFFFFF) + (int(raw.get("high") or 0) << 32)
        if raw is None or raw == "":
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise PayloadError(f"timestamp {raw!r} is not a number")
        try:
            seconds = float(raw) / scale
            if seconds > 1e11:  # milliseconds where seconds were promised
                seconds /= 1000.0
            return datetime.fromtimestamp(seconds, UTC)
        except (ValueError, OverflowError, OSError):
            raise PayloadError(f"timestamp {raw!r} is not seconds since the epoch") from None
    return datetime.now(UTC)


def chat_of_id(message_id: str) -> str | None:
    """The chat a serialized WAHA id names (``true_5511...@c.us_3EB0...``), or None."""
    parts = message_id.split("_")
    if len(parts) >= 3 and parts[0] in ("true", "false") and "@" in parts[1]:
        return parts[1]
    return None


def cus(address: str) -> str:
    """An address as WAHA spells it: Baileys' ``@s.whatsapp.net`` is WAHA's ``@c.us``."""
    user, _, server = address.partition("@")
    return f"{user.split(':', 1)[0]}@c.us" if server == "s.whatsapp.net" else address


def serialized(from_me: Any, chat: str, bare_id: str, participant: str | None = None) -> str:
    """WAHA's id for a message: ``{fromMe}_{chatId}_{id}``, ``_{participant}`` in groups."""
    tail = f"_{cus(participant)}" if participant else ""
    return f"{'true' if from_me is True else 'false'}_{cus(chat)}_{bare_id}{tail}"


def key_id(key: Mapping[str, Any]) -> str | None:
    """The serialized id of a protobuf message key (NOWEB ``remoteJid``/``id``, GOWS
    ``remoteJID``/``ID``), or None when the key lacks them."""
    chat = key.get("remoteJid") or key.get("remoteJID")
    bare = key.get("id") or key.get("ID")
    if not (isinstance(chat, str) and isinstance(bare, str) and chat and bare):
        return None
    return serialized(key.get("fromMe"), chat, bare)


