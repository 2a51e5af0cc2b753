"""One Baileys message as Evolution API v2 shapes it, normalized into an InboundMessage.

Evolution sends the same per-message object in ``messages.upsert``, ``send.message``,
``messages.set`` and the records of ``/chat/findMessages`` (its ``prepareMessage`` in
``whatsapp.baileys.service.ts``)::

    {"key": {"remoteJid": "5511999990000@s.whatsapp.net", "fromMe": false, "id": "3EB0...",
             "remoteJidAlt": "...@lid", "participant": ..., "addressingMode": "pn"},
     "pushName": "Maria", "message": {"conversation": "oi", "base64": ...},
     "contextInfo": {...}, "messageType": "conversation", "messageTimestamp": 1717604327}

``prepareMessage`` already folds ``extendedTextMessage`` into ``conversation`` and
``documentWithCaptionMessage`` into ``documentMessage``; both are read here anyway, since older
versions and other paths send them as Baileys gives them. Buffers (``fileSha256``) arrive as
JSON of a ``Uint8Array`` (``{"0": 12, "1": 200, ...}``), of a Node Buffer, or as base64.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway_bridge import jid
from gateway_bridge.events import Event, Ignored, InboundMessage, Media, PayloadError, StatusUpdate

# Wrappers whose ``message`` holds the real content (Evolution's MessageSubtype, plus Baileys').
WRAPPERS = ("ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2",
            "viewOnceMessageV2Extension", "documentWithCaptionMessage", "editedMessage",
            "deviceSentMessage")
# Keys of ``message`` that are no content of their own.
NOT_CONTENT = frozenset({"messageContextInfo", "base64", "mediaUrl", "speechToText",
                         "senderKeyDistributionMessage"})
MEDIA = {"imageMessage": "image", "videoMessage": "video", "ptvMessage": "video",
         "documentMessage": "document", "stickerMessage": "sticker", "audioMessage": "audio"}
BUTTONS = ("buttonsResponseMessage", "templateButtonReplyMessage")
LISTS = ("listResponseMessage", "interactiveResponseMessage")
REVOKE = (0, "0", "REVOKE")  # proto.Message.ProtocolMessage.Type.REVOKE


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def integer(value: Any) -> int | None:
    """A number as JSON may carry a protobuf Long: an int, a digit string, {low, high}."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 1e18:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 20:
        return int(value)
    if isinstance(value, dict) and isinstance(value.get("low"), int):
        high = value.get("high")
        return ((high if isinstance(high, int) else 0) << 32) + (value["low"] & 0xFFFFFFFF)
    return None


def when(value: Any) -> datetime:
    """Seconds since the epoch as UTC; absent is now. Milliseconds (13 digits: reactions'
    ``senderTimestampMs``, and some stores) are read as such, not as the year 50000."""
    if value is None:
        return datetime.now(UTC)
    seconds = integer(value)
    if seconds is None or seconds < 0:
        raise PayloadError(f"messageTimestamp {str(value)[:40]!r} is not seconds since the epoch")
    if seconds > 100_000_000_000:  # no message is from after the year 5138: milliseconds
        seconds //= 1000
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        raise PayloadError(f"messageTimestamp {seconds} is out of range") from None


def digest(value: Any) -> str | None:
    """A Baileys hash (``fileSha256``) as hex, whichever way JSON carried its bytes."""
    raw: bytes | None = None
    try:
        if isinstance(value, str) and value:
            raw = base64.b64decode(value, validate=True)
        elif isinstance(value, dict) and isinstance(value.get("data"), list):  # Node Buffer
            raw = bytes(value["data"])
        elif isinstance(value, dict) and value and all(k.isdigit() for k in value):
            raw = bytes(value[k] for k in sorted(value, key=int))  # a Uint8Array
        elif isinstance(value, list):
            raw = bytes(value)
    except (binascii.Error, ValueError, TypeError):
        return None
    return raw.hex() if raw else None


def unwrap(message: dict[str, Any]) -> dict[str, Any]:
    """The content inside ephemeral/view-once/caption wrappers, keeping Evolution's own
    additions (``base64``, ``mediaUrl``) that sit beside the wrapper."""
    for _ in range(4):  # wrappers nest (ephemeral around view-once), never deeply
        for name in WRAPPERS:
            inner = _dict(_dict(message.get(name)).get("message"))
            if inner:
                extra = {k: v for k, v in message.items() if k in NOT_CONTENT}
                message = {**inner, **extra}
                break
        else:
            return message
    return message


def content_type(message: dict[str, Any]) -> str | None:
    """The key that holds the content, as Baileys' ``getContentType`` picks it."""
    for name, value in message.items():
        if name not in NOT_CONTENT and value not in (None, "", {}):
            return name
    return None


def _vcard_number(vcard: Any) -> str | None:
    if not isinstance(vcard, str):
        return None
    found = re.search(r"waid=(\d{6,15})", vcard) or re.search(r"TEL[^:\n]*:([+\d ()-]{6,})", vcard)
    return "".join(ch for ch in found.group(1) if ch.isdigit()) if found else None


def _contact_text(card: dict[str, Any]) -> str:
    return " ".join(x for x in (_str(card.get("displayName")), _vcard_number(card.get("vcard")))
                    if x)


def _location_text(loc: dict[str, Any]) -> str:
    where = " ".join(x for x in (_str(loc.get("name")), _str(loc.get("address"))) if x)
    lat, lng = loc.get("degreesLatitude"), loc.get("degreesLongitude")
    point = f"({lat}, {lng})" if lat is not None and lng is not None else ""
    return " ".join(x for x in (where, point) if x)


def revoked(proto: dict[str, Any]) -> str | None:
    """The id a protocolMessage revokes, if it is a revoke. protobufjs leaves REVOKE (0, the
    default) out of the JSON, so a protocolMessage with a key, no type and no edit is one."""
    target = _str(_dict(proto.get("key")).get("id"))
    if target and (proto.get("type") in REVOKE
                   or ("type" not in proto and not proto.get("editedMessage"))):
        return target
    return None


def _addresses(key: dict[str, Any], data: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(sender, phone, lid): who the chat is with, as ``send``'s ``to`` takes it. Evolution's
    ``number`` takes digits, a phone JID, an ``@lid`` or a group JID (``createJid``)."""
    remote = key["remoteJid"]
    parsed = jid.parse(remote)
    if parsed is not None and parsed.is_group:
        who = [key.get(k) for k in ("participantAlt", "participantPn", "participant",
                                     "participantLid")] + [data.get("participant")]
        return remote, jid.phone_of(*who), jid.lid_of(*who)
    who = [remote] + [key.get(k) for k in ("remoteJidAlt", "senderPn", "senderLid")]
    phone, lid = jid.phone_of(*who), jid.lid_of(*who)
    if parsed is not None and parsed.phone:
        return parsed.phone, phone, lid
    if parsed is not None and parsed.lid:
        return parsed.lid, phone, lid  # the chat lives under its @lid; Evolution sends there
    return remote, phone, lid


def message_of(data: Mapping[str, Any], *, backlog: bool = False,
               from_me: bool | None = None) -> Event:
    """One message object → InboundMessage; a revoke → StatusUpdate(deleted); the status feed,
    edits and other protocol messages → Ignored. PayloadError only when the key or its id is
    missing (Evolution never sends such a message)."""
    key = _dict(data.get("key"))
    msg_id, remote = _str(key.get("id")), _str(key.get("remoteJid"))
    if msg_id is None or remote is None:
        raise PayloadError("message has no key.id or key.remoteJid")
    parsed = jid.parse(remote)
    if parsed is not None and parsed.is_broadcast:
        return Ignored(f"{parsed.server} message ({remote})")
    stamp = when(data.get("messageTimestamp"))
    message = unwrap(_dict(data.get("message")))
    kind = content_type(message)
    if kind is None:
        # Nothing to read yet: WhatsApp could not decrypt it ("Aguardando mensagem", a Baileys
        # CIPHERTEXT stub), and the retry brings it under the same id. Stored, it would take
        # that id, and the real text would then be dropped as its duplicate.
        stub = data.get("messageStubParameters")
        return Ignored(f"message {msg_id} has no content yet (not decrypted"
                       f"{': ' + str(stub)[:80] if stub else ''}); its retry brings it")
    if kind == "protocolMessage":
        proto = _dict(message["protocolMessage"])
        target = revoked(proto)
        if target:
            return StatusUpdate(provider_message_id=target, status="deleted", timestamp=stamp)
        return Ignored(f"protocol message {str(proto.get('type'))[:40]!r}")
    sender, phone, lid = _addresses(key, dict(data))
    mine = bool(key.get("fromMe")) if from_me is None else from_me
    name = None if mine else _str(data.get("pushName"))
    part = _dict(message.get(kind)) if kind else {}
    context = _dict(part.get("contextInfo")) or _dict(data.get("contextInfo"))
    common: dict[str, Any] = dict(
        provider_message_id=msg_id, sender=sender, phone=phone, lid=lid, sender_name=name,
        timestamp=stamp, from_me=mine, is_group=bool(parsed and parsed.is_group),
        backlog=backlog, reply_to=_str(context.get("stanzaId")))
    if kind == "conversation":
        return InboundMessage(text=str(message["conversation"]), **common)
    if kind == "extendedTextMessage":
        return InboundMessage(text=_str(part.get("text")) or "", **common)
    if kind in MEDIA:
        mtype = MEDIA[kind]
        if kind == "audioMessage" and part.get("ptt"):
            mtype = "voice"
        media = Media(mime=_str(part.get("mimetype")), ref=msg_id,
                      url=_str(message.get("mediaUrl")),  # Evolution's S3 copy; WhatsApp's
                      data=_str(message.get("base64")),  # own url is encrypted, so not kept
                      filename=_str(part.get("fileName")), size=integer(part.get("fileLength")),
                      sha256=digest(part.get("fileSha256")))
        return InboundMessage(text=_str(part.get("caption")) or "", type=mtype, media=media,
                              **common)
    if kind in ("locationMessage", "liveLocationMessage"):
        return InboundMessage(text=_location_text(part), type="location", **common)
    if kind == "contactMessage":
        return InboundMessage(text=_contact_text(part), type="contact", **common)
    if kind == "contactsArrayMessage":
        listed = part.get("contacts")
        cards = [_contact_text(_dict(c)) for c in (listed if isinstance(listed, list) else [])]
        text = "; ".join(c for c in cards if c) or _str(part.get("displayName")) or ""
        return InboundMessage(text=text, type="contact", **common)
    if kind == "reactionMessage":  # an empty text is a reaction taken back
        common["reply_to"] = _str(_dict(part.get("key")).get("id"))
        return InboundMessage(text=_str(part.get("text")) or "", type="reaction", **common)
    if kind in BUTTONS:
        text = _str(part.get("selectedDisplayText")) or _str(part.get("selectedButtonId")) or \
            _str(part.get("selectedId")) or ""
        return InboundMessage(text=text, type="button", **common)
    if kind in LISTS:
        reply = _dict(part.get("singleSelectReply"))
        text = (_str(part.get("title")) or _str(_dict(part.get("body")).get("text"))
                or _str(reply.get("selectedRowId")) or "")
        return InboundMessage(text=text, type="interactive", **common)
    # a message type we do not know (polls, events, orders...): kept whole for a person
    return InboundMessage(text="", type="unsupported", raw={kind: message[kind]}, **common)
