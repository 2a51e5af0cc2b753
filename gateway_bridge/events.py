"""What every gateway adapter turns its webhooks into, and the errors it raises."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class PayloadError(ValueError):
    """The webhook body is malformed; the message says what is wrong."""


class AuthError(PermissionError):
    """The webhook failed the authenticity check (missing or wrong signature)."""


class NotOffered(NotImplementedError):
    """The gateway has no such function (the Cloud API has no QR code and no message history)."""


class SendError(RuntimeError):
    """The gateway refused or failed a call; ``retryable`` says whether trying again may help,
    ``retry_after`` how many seconds the gateway asked us to wait first (None: it did not say),
    ``code`` the gateway's own error code when it gave one (Cloud's 131047, an HTTP status).

    The message never holds a credential: adapters name the gateway's answer, not the request.
    """

    def __init__(self, message: str, *, retryable: bool = True,
                 retry_after: float | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.code = code


@dataclass(frozen=True)
class InstanceConfig:
    """What an adapter needs to know about one connected number.

    ``webhook_secret`` authenticates the gateway's webhooks: the simulator's and WAHA's HMAC key,
    Cloud's app secret, the token in Evolution's webhook URL. ``api_key`` authenticates our calls
    to the gateway: Evolution's ``apikey``, WAHA's ``X-Api-Key``, Cloud's access token.
    ``options`` are the provider's own: ``instance`` (Evolution's instance name, default
    ``name``), ``session`` (WAHA's, default ``default``), ``phone_number_id`` and
    ``api_version`` (Cloud), ``verify_token`` (Cloud's GET handshake).
    """

    name: str
    webhook_secret: str
    api_url: str | None = None
    api_key: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def option(self, key: str, default: str | None = None) -> str | None:
        value = self.options.get(key)
        return str(value) if value not in (None, "") else default


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


MESSAGE_TYPES = frozenset({
    "text", "image", "audio", "voice", "video", "document", "sticker", "location", "contact",
    "reaction", "interactive", "button", "unsupported", "system"})
MEDIA_TYPES = frozenset({"image", "audio", "voice", "video", "document", "sticker"})


@dataclass(frozen=True)
class Media:
    """Where a message's file is, as the gateway tells it; fetched later with the adapter's
    ``download``. ``ref`` is the gateway's handle: Cloud's media id, WAHA's file URL, the
    Evolution message id (its media endpoint takes it); ``data`` is the file itself in base64
    when the webhook carried it (Evolution with ``webhook_base64``)."""

    mime: str | None
    ref: str | None = None
    url: str | None = None
    data: str | None = field(default=None, repr=False)
    filename: str | None = None
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    """A customer's message, normalized; an id or address no store column holds is refused,
    a display name too long is cut (the message itself is never lost for it)."""

    provider_message_id: str
    sender: str  # the address replies go to, as the gateway spells it
    phone: str | None  # digits only, when the gateway tells the phone number
    lid: str | None  # WhatsApp's @lid id, when the sender is known under one
    sender_name: str | None
    text: str  # the text, a caption, the chosen option's title; "" when there is none
    timestamp: datetime
    from_me: bool = False  # sent from the number itself: our echo, or an agent on the phone
    is_group: bool = False
    type: str = "text"  # one of MESSAGE_TYPES
    media: Media | None = None
    backlog: bool = False  # the gateway says it is history (Baileys' "append"), not news
    reply_to: str | None = None  # the provider id a reaction or a quote points at
    raw: Mapping[str, Any] | None = field(default=None, repr=False)  # kept for "unsupported"

    def __post_init__(self) -> None:
        for what in ("provider_message_id", "sender", "phone", "lid"):
            _fits(what, getattr(self, what))
        if self.type not in MESSAGE_TYPES:
            raise PayloadError(f"unknown message type {self.type!r}")
        object.__setattr__(self, "text", storable(self.text))
        if self.sender_name:
            object.__setattr__(self, "sender_name", storable(self.sender_name)[:MAX_NAME])


STATUSES = frozenset({"sent", "delivered", "read", "played", "failed", "deleted"})


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery status of a message: sent, delivered, read, played (a voice note heard),
    failed (with the gateway's error) or deleted (revoked by its sender)."""

    provider_message_id: str
    status: str
    timestamp: datetime
    error: str | None = None  # the gateway's words
    error_code: str | None = None  # the gateway's code: Cloud's 131047, Baileys' 479...
    # The reference our send carried, when the gateway gives it back (Cloud's
    # biz_opaque_callback_data): it names our message even when the send's answer was lost.
    ref: str | None = None

    def __post_init__(self) -> None:
        _fits("provider_message_id", self.provider_message_id)
        if self.ref is not None and (len(self.ref) > 128 or not self.ref.isprintable()):
            object.__setattr__(self, "ref", None)  # not one of ours (statuses.ref_for)
        if self.status not in STATUSES:
            raise PayloadError(f"unknown status {self.status!r}")
        if self.error:
            object.__setattr__(self, "error", storable(self.error))


CONNECTION_STATES = frozenset({"connected", "disconnected", "pairing"})


@dataclass(frozen=True)
class ConnectionUpdate:
    """The number's link to WhatsApp, from an event or from asking the gateway: connected,
    disconnected, or pairing (waiting for its QR code, given in ``qr`` when known)."""

    state: str
    timestamp: datetime
    qr: str | None = field(default=None, repr=False)
    detail: str | None = None  # the gateway's own word for it: "close", "SCAN_QR_CODE"...

    def __post_init__(self) -> None:
        if self.state not in CONNECTION_STATES:
            raise PayloadError(f"unknown connection state {self.state!r}")


@dataclass(frozen=True)
class Ignored:
    """Something the webhook said that needs no action (presence, a chat list), with why.
    ``unknown`` marks a shape the adapter does not know: its raw body is stored for a person to
    read, so a new gateway version never loses a message silently."""

    reason: str
    unknown: bool = False


Event = InboundMessage | StatusUpdate | ConnectionUpdate | Ignored
