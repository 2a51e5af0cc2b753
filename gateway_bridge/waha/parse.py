"""WAHA's webhooks: their authenticity and their events, normalized.

Every webhook is one JSON object (``WAHAWebhook``, WAHA's ``src/structures/webhooks.dto.ts``)::

    {"id": "evt_01...", "timestamp": 1634567890123, "session": "default", "event": "message",
     "payload": {...}, "me": {"id": "...@c.us", "pushName": "..."}, "engine": "WEBJS",
     "environment": {"version": "...", "engine": "WEBJS", "tier": "CORE"}, "metadata": {...}}

``timestamp`` there is in milliseconds; a message's own ``payload.timestamp`` in seconds.
With ``hmac.key`` set on the session's webhook, WAHA adds ``X-Webhook-Hmac`` (hex HMAC-SHA512 of
the raw body with that key) and ``X-Webhook-Hmac-Algorithm: sha512``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from gateway_bridge.events import (
    AuthError,
    ConnectionUpdate,
    Event,
    Ignored,
    InboundMessage,
    InstanceConfig,
    PayloadError,
    StatusUpdate,
    load_json,
)
from gateway_bridge.waha.content import obj
from gateway_bridge.waha.ids import chat_of_id, serialized, timestamp
from gateway_bridge.waha.message import message

SIGNATURE_HEADER = "X-Webhook-Hmac"
ALGORITHM_HEADER = "X-Webhook-Hmac-Algorithm"

# message.ack's ``ack`` (WAHA's WAMessageAck enum) → our status; 0 (PENDING) is not news.
ACKS = {-1: "failed", 1: "sent", 2: "delivered", 3: "read", 4: "played"}
ACK_NAMES = {"ERROR": -1, "PENDING": 0, "SERVER": 1, "DEVICE": 2, "READ": 3, "PLAYED": 4}
# session.status → our connection state. PASSKEY_* are steps of pairing (GOWS).
SESSION_STATES = {
    "WORKING": "connected", "SCAN_QR_CODE": "pairing", "PASSKEY_REQUIRED": "pairing",
    "PASSKEY_CONFIRMATION_REQUIRED": "pairing", "STARTING": "disconnected",
    "STOPPED": "disconnected", "FAILED": "disconnected",
}
# Events that need nothing from us, with why.
IGNORED = {
    "message.waiting": "WhatsApp is still decrypting the message; it comes again as 'message'",
    "message.ack.group": "a group member's receipt; the message's own ack comes separately",
    "state.change": "deprecated engine state; session.status carries the connection",
    "engine.event": "low-level engine event, for WAHA's debugging",
    "presence.update": "typing/online presence",
    "chat.archive": "chat archived or unarchived on the phone",
    "poll.vote": "poll vote (we send no polls)",
    "poll.vote.failed": "poll vote WAHA could not decrypt (we send no polls)",
    "event.response": "answer to a WhatsApp event message (we send none)",
    "event.response.failed": "answer to a WhatsApp event message (we send none)",
    "call.received": "voice or video call offered", "call.accepted": "call accepted",
    "call.rejected": "call rejected or ended",
    "label.upsert": "label created or changed", "label.deleted": "label deleted",
    "label.chat.added": "label put on a chat", "label.chat.deleted": "label taken off a chat",
}
IGNORED_PREFIXES = {"group.": "group membership or settings changed"}


def sign(body: bytes, secret: str) -> str:
    """The ``X-Webhook-Hmac`` value WAHA sends for a body: hex HMAC-SHA512 with the key."""
    return hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()


def verify(body: bytes, headers: Mapping[str, str], query: Mapping[str, str],
           instance: InstanceConfig) -> None:
    """The raw body carries the HMAC of the instance's webhook secret, or AuthError.

    WAHA signs only with SHA-512; a request claiming another algorithm is refused rather than
    checked with a weaker one."""
    lowered = {k.lower(): v for k, v in headers.items()}
    algorithm = lowered.get(ALGORITHM_HEADER.lower(), "sha512").strip().lower()
    given = lowered.get(SIGNATURE_HEADER.lower(), "").strip().lower()
    expected = sign(body, instance.webhook_secret)
    # As bytes: compare_digest refuses str with non-ASCII (a hostile header), and runs in
    # constant time for equal lengths; a header of another length just fails.
    if algorithm != "sha512" or not hmac.compare_digest(given.encode(), expected.encode()):
        raise AuthError(f"missing or wrong {SIGNATURE_HEADER} header")


def parse(body: bytes, instance: InstanceConfig | None = None) -> list[Event]:
    """The webhook's events. AuthError when it comes from another WAHA session than the
    instance's (``options["session"]``, default "default"): one WAHA serves many numbers."""
    data = load_json(body)
    if instance is not None:
        ours = instance.option("session", "default")
        if data.get("session") != ours:
            raise AuthError(f"webhook is for WAHA session {str(data.get('session'))[:60]!r}, "
                            f"not this instance's {ours!r}")
    event = data.get("event")
    if not isinstance(event, str) or not event:
        raise PayloadError("field 'event' is missing")
    payload = data.get("payload")
    envelope_ms = data.get("timestamp")
    if event in ("message", "message.any"):
        if not isinstance(payload, dict):
            raise PayloadError(f"{event} without a 'payload' object")
        return [message(payload, envelope_ms)]
    if event == "message.reaction":
        return [_reaction(obj(payload), envelope_ms)]
    if event == "message.ack":
        return [_ack(obj(payload), envelope_ms)]
    if event == "message.revoked":
        return [_revoked(obj(payload), envelope_ms)]
    if event == "message.edited":
        return [_edited(obj(payload))]
    if event == "session.status":
        return [_session(obj(payload), envelope_ms)]
    if event in IGNORED:
        return [Ignored(IGNORED[event])]
    for prefix, reason in IGNORED_PREFIXES.items():
        if event.startswith(prefix):
            return [Ignored(f"{event}: {reason}")]
    return [Ignored(f"unknown WAHA event {event[:60]!r}", unknown=True)]


def _reaction(payload: dict[str, Any], envelope_ms: Any) -> InboundMessage | Ignored:
    """A reaction (or its removal: empty ``text``) as a message of type "reaction" whose
    ``reply_to`` is the reacted message; the sender's address is read as for any message."""
    reaction = obj(payload.get("reaction"))
    if not reaction:
        return Ignored("message.reaction without a 'reaction'", unknown=True)
    base = {k: v for k, v in payload.items() if k != "reaction"}
    parsed = message({**base, "body": "", "hasMedia": False, "_data": {}}, envelope_ms)
    if isinstance(parsed, Ignored):
        return parsed
    target = reaction.get("messageId")
    return InboundMessage(
        provider_message_id=parsed.provider_message_id, sender=parsed.sender,
        phone=parsed.phone, lid=parsed.lid, sender_name=None,
        text=str(reaction.get("text") or ""), timestamp=parsed.timestamp,
        from_me=parsed.from_me, is_group=parsed.is_group, type="reaction",
        reply_to=target if isinstance(target, str) and target else None,
    )


def _ack(payload: dict[str, Any], envelope_ms: Any) -> StatusUpdate | Ignored:
    message_id = payload.get("id")
    if not isinstance(message_id, str) or not message_id:
        raise PayloadError("message.ack without the message's 'id'")
    ack = payload.get("ack")
    name = payload.get("ackName")
    if ack is None and isinstance(name, str):  # an engine that filled in only the name
        ack = ACK_NAMES.get(name)
    if ack == 0:
        return Ignored("message.ack PENDING: not yet on WhatsApp's server")
    if isinstance(ack, bool) or not isinstance(ack, int) or ack not in ACKS:
        return Ignored(f"message.ack with an unknown ack {str(ack)[:20]!r}", unknown=True)
    failed = ACKS[ack] == "failed"
    return StatusUpdate(
        provider_message_id=message_id, status=ACKS[ack],
        timestamp=timestamp(payload.get("timestamp"), envelope_ms),
        error=(str(name) if name else "ERROR") if failed else None,
        error_code=str(ack) if failed else None,
    )


def _revoked(payload: dict[str, Any], envelope_ms: Any) -> StatusUpdate | Ignored:
    """The revoked message as "deleted". ``after.id`` is the id of the revoke itself (in WEBJS
    the revoked message's own); ``revokedMessageId`` the bare id of the revoked one, which
    with the chat and sender of the revoke gives the id the message was stored under."""
    after = obj(payload.get("after")) or obj(payload.get("before"))
    action_id = after.get("id")
    bare = payload.get("revokedMessageId")
    if not isinstance(action_id, str) or not action_id:
        return Ignored("message.revoked without the message's id", unknown=True)
    target = action_id
    chat = chat_of_id(action_id)
    if isinstance(bare, str) and bare and chat:
        participant = action_id.split("_")[3] if len(action_id.split("_")) > 3 else None
        target = serialized(action_id.startswith("true_"), chat, bare, participant)
    return StatusUpdate(provider_message_id=target, status="deleted",
                        timestamp=timestamp(after.get("timestamp"), envelope_ms))


def _edited(payload: dict[str, Any]) -> Ignored:
    """No normalized event says "this message now reads": the edit is noted, the original
    kept (our events carry no edits; see the adapter's report)."""
    bare = payload.get("editedMessageId")
    return Ignored(f"message {str(bare)[:60]!r} was edited by its sender")


def _session(payload: dict[str, Any], envelope_ms: Any) -> ConnectionUpdate | Ignored:
    status = payload.get("status")
    if not isinstance(status, str) or status not in SESSION_STATES:
        return Ignored(f"session.status {str(status)[:40]!r} is not one WAHA documents",
                       unknown=True)
    return ConnectionUpdate(state=SESSION_STATES[status], detail=status,
                            timestamp=timestamp(None, envelope_ms))
