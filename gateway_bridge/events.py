"""What every gateway adapter turns its webhooks into, and the errors it raises."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class PayloadError(ValueError):
    """The webhook body is malformed; the message says what is wrong."""


class AuthError(PermissionError):
    """The webhook failed the authenticity check (missing or wrong signature)."""


class SendError(RuntimeError):
    """The gateway refused or failed a send; ``retryable`` says whether trying again may help,
    ``retry_after`` how many seconds the gateway asked us to wait first (None: it did not say)."""

    def __init__(self, message: str, *, retryable: bool = True,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class InstanceConfig:
    """What an adapter needs to know about one connected number."""

    name: str
    webhook_secret: str
    api_url: str | None = None
    api_key: str | None = None


def load_json(body: bytes) -> dict[str, Any]:
    """A webhook body as a JSON object, or a PayloadError saying why not: every adapter reads
    its bodies here, so none turns hostile JSON (not UTF-8, nested thousands deep, a number of
    thousands of digits, which Python refuses to convert) into a 500."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise PayloadError("body is nested too deeply") from None
    except ValueError:  # int() over sys.get_int_max_str_digits() digits
        raise PayloadError(f"body holds a number of over {sys.get_int_max_str_digits()} "
                           "digits") from None
    if not isinstance(data, dict):
        raise PayloadError("body must be a JSON object")
    return data


# What the store keeps of ids and addresses (server.schema); no gateway's are longer.
LONGEST = {"provider_message_id": 128, "sender": 128, "phone": 32, "lid": 128}
MAX_NAME = 200


def _fits(what: str, value: str | None) -> None:
    if value is not None and len(value) > LONGEST[what]:
        raise PayloadError(f"{what} is longer than {LONGEST[what]} characters")
    if value is not None and value != storable(value):
        raise PayloadError(f"{what} holds a NUL or a lone surrogate, which no store keeps")


def storable(text: str) -> str:
    """Text as every store keeps it: NULs dropped (PostgreSQL refuses them), lone surrogates
    (valid in JSON, not in UTF-8) as "?"."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


@dataclass(frozen=True)
class InboundMessage:
    """A customer's message, normalized; an id or address no store column holds is refused,
    a display name too long is cut (the message itself is never lost for it)."""

    provider_message_id: str
    sender: str  # the address replies go to, as the gateway spells it
    phone: str | None  # digits only, when the gateway tells the phone number
    lid: str | None  # WhatsApp's @lid id, when the sender is known under one
    sender_name: str | None
    text: str
    timestamp: datetime
    from_me: bool = False
    is_group: bool = False

    def __post_init__(self) -> None:
        for what in ("provider_message_id", "sender", "phone", "lid"):
            _fits(what, getattr(self, what))
        object.__setattr__(self, "text", storable(self.text))
        if self.sender_name:
            object.__setattr__(self, "sender_name", storable(self.sender_name)[:MAX_NAME])


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery status of a message we sent: sent, delivered, read or failed."""

    provider_message_id: str
    status: str
    timestamp: datetime
    error: str | None = None

    def __post_init__(self) -> None:
        _fits("provider_message_id", self.provider_message_id)
        if self.error:
            object.__setattr__(self, "error", storable(self.error))


Event = InboundMessage | StatusUpdate
