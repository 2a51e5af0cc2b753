"""The WhatsApp Cloud API's webhooks (Meta's Graph API): authenticity and normalization.

A POST body is ``{"object": "whatsapp_business_account", "entry": [{"id": <WABA id>,
"changes": [{"field": "messages", "value": {...}}]}]}``; a ``messages`` value holds
``metadata{phone_number_id, display_phone_number}``, ``contacts[]{profile{name}, wa_id,
user_id}`` and ``messages[]``, ``statuses[]`` or ``errors[]``. One body may carry several
entries, changes, messages and statuses: every one of them becomes an event. Meta signs the raw
body: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>``. Subscribing the
webhook is a GET handshake (``hub.mode``, ``hub.verify_token``, ``hub.challenge``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway_bridge.cloud.content import content_of, dicts, part_of, str_of
from gateway_bridge.events import (
    AuthError,
    Event,
    Ignored,
    InboundMessage,
    InstanceConfig,
    PayloadError,
    StatusUpdate,
    load_json,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"
STATUSES = {"sent", "delivered", "read", "played", "failed", "deleted"}
# Fields a WABA webhook may be subscribed to that tell us nothing to act on (templates, quality,
# account and billing news); any other field is stored raw as unknown.
QUIET_FIELDS = frozenset(
    "account_update account_alerts account_review_update account_settings_update "
    "business_capability_update business_status_update calls flows security "
    "message_template_status_update message_template_quality_update template_category_update "
    "message_template_components_update phone_number_name_update phone_number_quality_update "
    "user_preferences payment_configuration_update partner_solutions smb_app_state_sync".split())
DIGITS = re.compile(r"\d{6,15}")


def sign(body: bytes, secret: str) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends with a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str:
    # Servers hand headers over in any case; HTTP names are case-insensitive.
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return ""


def verify(body: bytes, headers: Mapping[str, str], query: Mapping[str, str],
           instance: InstanceConfig) -> None:
    """The raw body carries the app secret's signature, or AuthError (constant time)."""
    if not instance.webhook_secret:
        raise AuthError("instance has no app secret to check the signature with")
    given = _header(headers, SIGNATURE_HEADER).encode()
    if not hmac.compare_digest(given, sign(body, instance.webhook_secret).encode()):
        raise AuthError(f"missing or wrong {SIGNATURE_HEADER} header")


def handshake(query: Mapping[str, str], instance: InstanceConfig) -> str:
    """Meta's GET subscription check: the ``hub.challenge`` to echo back, or AuthError."""
    expected = instance.option("verify_token")
    if not expected:
        raise AuthError("instance has no verify_token option")
    token = (query.get("hub.verify_token") or "").encode()
    ok = hmac.compare_digest(token, expected.encode())  # before the mode: constant time
    challenge = query.get("hub.challenge")
    if not ok or query.get("hub.mode") != "subscribe" or challenge is None:
        raise AuthError("wrong hub.verify_token or hub.mode")
    return challenge


def parse(body: bytes, instance: InstanceConfig | None = None) -> list[Event]:
    """Every message and status in the body, in order; AuthError when a change is for another
    phone number than the instance's (``phone_number_id`` option)."""
    data = load_json(body)
    if data.get("object") != "whatsapp_business_account":
        return [Ignored(f"object {str(data.get('object'))[:40]!r} is not WhatsApp's",
                        unknown=True)]
    entries = data.get("entry")
    if not isinstance(entries, list):
        raise PayloadError("field 'entry' must be a list")
    want = instance.option("phone_number_id") if instance is not None else None
    events: list[Event] = []
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            raise PayloadError("field 'entry[].changes' must be a list")
        for change in changes:
            if not isinstance(change, dict):
                raise PayloadError("field 'changes[]' must be an object")
            events.extend(_change(change, instance is not None, want))
    return events or [Ignored("webhook without changes")]


def _change(change: dict[str, Any], check: bool, want: str | None) -> list[Event]:
    field = change.get("field")
    value = change.get("value")
    if not isinstance(value, dict):
        return [Ignored(f"change {str(field)[:40]!r} without a value", unknown=True)]
    metadata = value.get("metadata")
    named = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
    # Only a change that names a number can be another instance's (account news names none).
    if check and named is not None and (want is None or str(named) != want):
        raise AuthError("webhook is for another phone number id")
    if field == "messages":
        return _messages(value, "messages", from_me=False)
    if field == "smb_message_echoes":  # typed in the WhatsApp Business app (coexistence)
        return _messages(value, "message_echoes", from_me=True)
    if isinstance(field, str) and field in QUIET_FIELDS:
        return [Ignored(f"{field} needs no action")]
    return [Ignored(f"unknown field {str(field)[:40]!r}", unknown=True)]


def _messages(value: dict[str, Any], key: str, *, from_me: bool) -> list[Event]:
    names = _names(value.get("contacts"))
    events: list[Event] = []
    for msg in _list(value, key):
        events.append(_message(msg, names, from_me=from_me))
    for st in _list(value, "statuses"):
        events.append(_status(st))
    if not events:
        errors = value.get("errors")
        if isinstance(errors, list) and errors:  # Meta could not deliver us something
            words, code = _error(errors)
            return [Ignored(f"Cloud API reported an error: {code} {words}")]
        return [Ignored(f"{key} change without messages or statuses", unknown=True)]
    return events


def _list(value: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = value.get(key, [])
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise PayloadError(f"field {key!r} must be a list of objects")
    return items


def _names(contacts: Any) -> dict[str, str]:
    """Display names by every id the contact is known by (``wa_id`` and ``user_id``)."""
    names: dict[str, str] = {}
    for c in dicts(contacts):
        name = str_of(part_of(c, "profile"), "name")
        if name.strip():
            for key in ("wa_id", "user_id"):
                if isinstance(c.get(key), str):
                    names[c[key]] = name
    return names


def _timestamp(raw: Any) -> datetime:
    """Cloud timestamps are seconds as a string ("1739321024")."""
    if raw is None:
        return datetime.now(UTC)
    try:
        seconds = float(raw) if not isinstance(raw, bool) else float("nan")
        return datetime.fromtimestamp(seconds, UTC)
    except (TypeError, ValueError, OverflowError, OSError):  # NaN, text, or milliseconds
        raise PayloadError(f"field 'timestamp' {str(raw)[:30]!r} is not seconds since the epoch"
                           ) from None


def _id(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(f"field {key!r} is missing or not a non-empty string")
    return value


def _error(errors: Any) -> tuple[str | None, str | None]:
    """The first Cloud error's words ("title: details") and code."""
    err = errors[0] if isinstance(errors, list) and errors else None
    if not isinstance(err, dict):
        return None, None
    data = err.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    said = err.get("message") or err.get("title")
    words = ": ".join(dict.fromkeys(str(x) for x in (said, details) if x))  # each once
    code = err.get("code")
    return words or None, (str(code) if code is not None else None)


def _status(st: dict[str, Any]) -> Event:
    status = st.get("status")
    if not isinstance(status, str) or status not in STATUSES:
        return Ignored(f"unknown status {str(status)[:40]!r}", unknown=True)
    error, code = _error(st.get("errors")) if status == "failed" else (None, None)
    ref = st.get("biz_opaque_callback_data")
    return StatusUpdate(provider_message_id=_id(st, "id"), status=str(status),
                        timestamp=_timestamp(st.get("timestamp")), error=error, error_code=code,
                        ref=ref if isinstance(ref, str) else None)


def _message(msg: dict[str, Any], names: dict[str, str], *, from_me: bool) -> Event:
    mid = _id(msg, "id")
    kind = msg.get("type")
    when = _timestamp(msg.get("timestamp"))
    if kind == "revoke":  # the customer deleted a message: a status of that message
        revoke = msg.get("revoke")
        if not isinstance(revoke, dict):
            raise PayloadError("revoke message without its 'revoke' part")
        return StatusUpdate(provider_message_id=_id(revoke, "original_message_id"),
                            status="deleted", timestamp=when)
    # An echo's chat is its recipient; a customer's, its sender. A user with a username and no
    # phone shown comes as a business-scoped user id (BSUID, "US.123..."), which sends take too.
    party = (msg.get("to") or msg.get("to_user_id")) if from_me else (
        msg.get("from") or msg.get("from_user_id"))
    if not isinstance(party, str) or not party.strip():
        raise PayloadError("message has no 'from' (or 'to' for an echo)")
    phone = party if DIGITS.fullmatch(party) else None
    group = msg.get("group_id")
    content = msg
    reply_to = str_of(part_of(msg, "context"), "id") or None  # the message quoted
    if kind == "edit":  # the customer edited a message: the new text, pointing at the old one
        edit = part_of(msg, "edit")
        content = part_of(edit, "message")
        kind = content.get("type")
        reply_to = str_of(edit, "original_message_id") or reply_to
    mtype, text, media, extra_reply = content_of(content, str(kind))
    return InboundMessage(
        provider_message_id=mid,
        sender=group if isinstance(group, str) and group else party,
        phone=phone,
        lid=None,  # Cloud never shows WhatsApp's @lid
        sender_name=None if from_me else names.get(party),
        text=text,
        timestamp=when,
        from_me=from_me,
        is_group=isinstance(group, str) and bool(group),
        type=mtype,
        media=media,
        reply_to=extra_reply or reply_to,
        raw=msg if mtype in ("unsupported", "interactive", "button", "system") else None,
    )
