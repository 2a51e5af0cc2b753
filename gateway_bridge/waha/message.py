"""One WAHA message (a webhook's ``payload`` or an item of the chat history) as an InboundMessage.

WAHA hands every engine's messages over in one shape (``WAMessage``, WAHA's
``src/structures/responses.dto.ts``)::

    {"id": "false_11111111111@c.us_AAAA", "timestamp": 1666943582, "from": "11111111111@c.us",
     "fromMe": false, "to": ..., "participant": null, "body": "text or caption",
     "hasMedia": true, "media": {"url": ..., "mimetype": ..., "filename": ..., "error": null},
     "ack": 1, "ackName": "SERVER", "location": {...}, "vCards": ["BEGIN:VCARD..."],
     "replyTo": {"id": ..., "participant": ..., "body": ...}, "_data": <the engine's message>}

``content.py`` reads the type and text; this module the addresses: who the message is with,
their phone and their ``@lid``, from ``from``/``participant`` and the engine's ``_data``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway_bridge import jid
from gateway_bridge.events import Ignored, InboundMessage, PayloadError
from gateway_bridge.waha.content import (
    choice_text,
    contact_text,
    kind_of,
    location_text,
    media_of,
    not_decrypted,
    obj,
    text_of,
)
from gateway_bridge.waha.ids import chat_of_id, key_id, serialized, timestamp


def addresses(payload: Mapping[str, Any], chat: str, is_group: bool, from_me: bool,
              ) -> tuple[str | None, str | None]:
    """(phone, lid) of whoever the message is with: the chat, or in a group its participant.

    A ``...@lid`` address hides the phone; the engines tell it beside it when WhatsApp does:
    NOWEB's ``_data.key.remoteJidAlt``/``participantAlt`` (Baileys 7) or ``senderPn``/
    ``participantPn`` (Baileys 6.7), GOWS' ``_data.Info.SenderAlt``/``RecipientAlt``.
    """
    data = obj(payload.get("_data"))
    key = obj(data.get("key"))
    info = obj(data.get("Info"))
    if is_group:
        who: list[str | None] = [payload.get("participant"), payload.get("author"),
                                 key.get("participant"), key.get("participantAlt"),
                                 key.get("participantPn"), key.get("participantLid"),
                                 data.get("author")]
        if not from_me:
            who += [info.get("Sender"), info.get("SenderAlt")]
    else:
        who = [chat, key.get("remoteJid"), key.get("remoteJidAlt"), key.get("senderPn"),
               key.get("senderLid"),
               *((info.get("RecipientAlt"),) if from_me else
                 (info.get("Sender"), info.get("SenderAlt")))]
    found = [w for w in who if isinstance(w, str)]
    return jid.phone_of(*found), jid.lid_of(*found)


def quoted(reply: Mapping[str, Any], chat: str, is_group: bool, theirs: set[str],
           ) -> str | None:
    """The id of the message a reply quotes. WAHA gives the bare WhatsApp id (``replyTo.id``)
    and who wrote it (``participant``); in a one-to-one chat that says whether it was ours,
    which with the chat gives the stored id. In groups (ids differ by engine) it stays bare."""
    bare = reply.get("id")
    if not isinstance(bare, str) or not bare:
        return None
    who = jid.parse(reply.get("participant"))
    if "_" in bare or is_group or who is None:
        return bare
    return serialized(who.user not in theirs, chat, bare)


def message(payload: Mapping[str, Any], envelope_ms: Any = None) -> InboundMessage | Ignored:
    """The message, normalized; Ignored for the status feed and channels (no customer there)
    and for one not decrypted yet (``not_decrypted``).

    ``envelope_ms`` is the webhook's own timestamp (milliseconds), used when the message has
    none (GOWS sends null for a zero time)."""
    message_id = payload.get("id")
    if isinstance(message_id, dict):  # WEBJS' raw id object, in some history answers
        message_id = message_id.get("_serialized")
    if not isinstance(message_id, str) or not message_id.strip():
        raise PayloadError("the message has no 'id'")
    from_me = payload.get("fromMe") is True
    from_ = text_of(payload.get("from"))
    # WEBJS puts our own number in "from" for our messages; the id always names the chat.
    chat = chat_of_id(message_id) or (text_of(payload.get("to")) if from_me else None) or from_
    parsed = jid.parse(chat)
    if chat is None or parsed is None:
        raise PayloadError(f"message {message_id[:60]!r} names no chat in 'from'")
    if parsed.is_broadcast:
        return Ignored(f"{parsed.server} message (status or channel): no conversation")
    waiting = not_decrypted(payload)
    if waiting:  # its retry brings it under this id: stored now, that would be a duplicate
        return Ignored(f"message {message_id[:80]} has no content yet ({waiting}); "
                       "its retry brings it")
    kind, content = kind_of(payload)
    body = payload.get("body")
    text = body if isinstance(body, str) else ""
    if kind == "location":
        text = location_text(payload, content)
    elif kind == "contact":
        text = contact_text(payload, content)
    elif kind in ("button", "interactive") and not text:
        text = choice_text(content)
    elif kind == "reaction":
        text = str(content.get("text") or "")
    elif kind == "unsupported":
        text = ""
    data = obj(payload.get("_data"))
    name = data.get("notifyName") or data.get("pushName") or obj(data.get("Info")).get("PushName")
    phone, lid = addresses(payload, chat, parsed.is_group, from_me)
    theirs = {parsed.user, phone or "", (lid or "@").split("@")[0]}  # the customer's own ids
    reply = quoted(obj(payload.get("replyTo")), chat, parsed.is_group, theirs)
    if kind == "reaction":  # NOWEB before WAHA gave reactions their own event
        reply = key_id(obj(content.get("key")))
    return InboundMessage(
        provider_message_id=message_id,
        sender=chat,
        phone=phone,
        lid=lid,
        sender_name=name if isinstance(name, str) and name.strip() and not from_me else None,
        text=text,
        timestamp=timestamp(payload.get("timestamp"), envelope_ms),
        from_me=from_me,
        is_group=parsed.is_group,
        type=kind,
        media=media_of(payload, kind, content),
        # WhatsApp Web marks messages it loaded from the phone's history.
        backlog=data.get("isMdHistoryMsg") is True,
        reply_to=reply,
        raw=dict(payload) if kind == "unsupported" else None,
    )
