"""What a WAHA message holds: its type, and the text and file of each type.

WAHA tells the type only in the engine's own ``_data``: WEBJS (WhatsApp Web) as ``_data.type``
("chat", "image", "ptt"...), NOWEB (Baileys) and GOWS (whatsmeow) as the protobuf message,
``_data.message`` and ``_data.Message``, whose content key names it ({"imageMessage": ...}).
GOWS writes that protobuf with Go's field names ("PTT", "URL"), NOWEB with JavaScript's ("ptt",
"url"); both are read. Where ``_data`` says nothing the type comes from the common fields
(``hasMedia``, ``media.mimetype``, ``location``, ``vCards``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway_bridge.events import Media

# WEBJS ``_data.type`` → our type. Notices WhatsApp Web shows in a chat are "system".
WEBJS_TYPES = {
    "chat": "text", "image": "image", "video": "video", "audio": "audio", "ptt": "voice",
    "document": "document", "sticker": "sticker", "location": "location", "vcard": "contact",
    "multi_vcard": "contact", "reaction": "reaction", "buttons_response": "button",
    "template_button_reply": "button", "list_response": "interactive",
    "interactive_response": "interactive", "revoked": "system", "ciphertext": "system",
    "e2e_notification": "system", "notification": "system", "notification_template": "system",
    "gp2": "system", "call_log": "system", "protocol": "system",
    "broadcast_notification": "system",
}
# The protobuf content key (NOWEB ``_data.message``, GOWS ``_data.Message``) → our type.
PROTO_TYPES = {
    "conversation": "text", "extendedTextMessage": "text", "imageMessage": "image",
    "videoMessage": "video", "ptvMessage": "video", "audioMessage": "audio",
    "documentMessage": "document", "stickerMessage": "sticker", "locationMessage": "location",
    "liveLocationMessage": "location", "contactMessage": "contact",
    "contactsArrayMessage": "contact", "reactionMessage": "reaction",
    "buttonsResponseMessage": "button", "templateButtonReplyMessage": "button",
    "listResponseMessage": "interactive", "interactiveResponseMessage": "interactive",
    "protocolMessage": "system",
}
# Envelopes around the real content (disappearing, view-once, a document with a caption).
PROTO_WRAPPERS = ("ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2",
                  "viewOnceMessageV2Extension", "documentWithCaptionMessage", "editedMessage")
# Keys beside the content that say nothing of its type.
PROTO_NOISE = frozenset({"messageContextInfo", "senderKeyDistributionMessage"})
MEDIA_TYPES = frozenset({"image", "audio", "voice", "video", "document", "sticker"})


def obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (engines send null freely)."""
    return value if isinstance(value, dict) else {}


def text_of(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def proto_content(data: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The protobuf content key and its body, wrappers opened; (None, {}) when not protobuf."""
    message = obj(data.get("message")) or obj(data.get("Message"))
    for _ in range(4):  # wrappers nest at most a few deep
        wrapper = next((w for w in PROTO_WRAPPERS if isinstance(message.get(w), dict)), None)
        if wrapper is None:
            break
        message = obj(message[wrapper].get("message"))
    keys = [k for k, v in message.items() if k not in PROTO_NOISE and v is not None]
    return (keys[0], obj(message[keys[0]])) if keys else (None, {})


def not_decrypted(payload: Mapping[str, Any]) -> str | None:
    """Why the message has nothing to read yet, or None when it has something.

    WhatsApp delivers a message the linked device could not decrypt as a placeholder, and the
    phone's retry brings the message itself later under the same id. Stored, the placeholder
    would take the id and the real message be dropped as its duplicate. WEBJS types it
    "ciphertext" (WAHA's webhook sends it as ``message.waiting``, its chat history as it is);
    NOWEB (Baileys) upserts it with the CIPHERTEXT stub (2) and no content, or in a group only
    the sender key, which WAHA 2024.10 still forwarded as ``message``; GOWS (whatsmeow) never
    hands one over. A protobuf engine's message with no content at all is taken for one too.
    """
    data = obj(payload.get("_data"))
    if data.get("type") == "ciphertext":
        return "WhatsApp Web is still waiting for it (ciphertext)"
    if isinstance(data.get("type"), str) or not any(
            k in data for k in ("key", "Info", "message", "Message")):
        return None  # WEBJS, or no engine data: read by its common fields
    if proto_content(data)[0] is not None or text_of(payload.get("body")) \
            or payload.get("hasMedia") or obj(payload.get("media")) \
            or obj(payload.get("location")) or payload.get("vCards"):
        return None  # something to read: kept, whatever else came with it
    if data.get("messageStubType") in (2, "CIPHERTEXT"):
        why = data.get("messageStubParameters")
        return "not decrypted" + (f": {str(why)[:80]}" if why else "")
    if obj(data.get("key")).get("isViewOnce"):
        return None  # a view-once WhatsApp never shows a linked device: nothing comes later
    return "no content"


def kind_of(payload: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Our type for the message, and the protobuf content when the engine gave one."""
    data = obj(payload.get("_data"))
    webjs = data.get("type")
    if isinstance(webjs, str) and webjs:
        return WEBJS_TYPES.get(webjs, "unsupported"), {}
    key, content = proto_content(data)
    if key is not None:
        kind = PROTO_TYPES.get(key, "unsupported")
        if kind == "audio" and (content.get("ptt") or content.get("PTT")):  # GOWS: Go's names
            kind = "voice"
        return kind, content
    # No engine data: judge by what every engine fills in.
    media = obj(payload.get("media"))
    mime = str(media.get("mimetype") or "")
    if payload.get("hasMedia") or media:
        major = mime.split("/", 1)[0]
        return ({"image": "image", "video": "video", "audio": "audio"}.get(major, "document"),
                {})
    if obj(payload.get("location")):
        return "location", {}
    if payload.get("vCards"):
        return "contact", {}
    return "text", {}


def location_text(payload: Mapping[str, Any], content: Mapping[str, Any]) -> str:
    """"name address (lat, long)", from WAHA's ``location`` or the protobuf one."""
    loc = obj(payload.get("location"))
    lat = loc.get("latitude", content.get("degreesLatitude"))
    lng = loc.get("longitude", content.get("degreesLongitude"))
    words = [w.strip() for w in (loc.get("name") or content.get("name"),
                                 loc.get("address") or content.get("address"))
             if isinstance(w, str) and w.strip()]
    if not words and isinstance(loc.get("description"), str):  # WEBJS: "name\naddress"
        words = [" ".join(loc["description"].split())]
    where = f"({lat}, {lng})" if lat is not None and lng is not None else ""
    return " ".join([*words, where]).strip()


def vcard_text(card: str) -> str:
    """"Name +number" from one vCard: its FN and its first TEL."""
    name = number = ""
    for line in card.replace("\r", "").split("\n"):
        head, _, value = line.partition(":")
        field = head.split(";", 1)[0].upper()
        if field == "FN" and not name:
            name = value.strip()
        elif field.endswith("TEL") and not number:
            number = value.strip()
    return " ".join(x for x in (name, number) if x)


def contact_text(payload: Mapping[str, Any], content: Mapping[str, Any]) -> str:
    vcards, listed = payload.get("vCards"), content.get("contacts")
    cards = [c for c in (vcards if isinstance(vcards, list) else []) if isinstance(c, str)]
    if not cards:  # the protobuf: contactMessage, or contactsArrayMessage's list
        parts = [content, *[obj(c) for c in (listed if isinstance(listed, list) else [])]]
        cards = [p["vcard"] for p in parts if isinstance(p.get("vcard"), str)]
        if not cards:
            return str(content.get("displayName") or "")
    return "; ".join(t for t in (vcard_text(c) for c in cards) if t)


def choice_text(content: Mapping[str, Any]) -> str:
    """The title of the chosen button or list row, from the protobuf reply."""
    for key in ("selectedDisplayText", "title"):
        if isinstance(content.get(key), str) and content[key]:
            return str(content[key])
    return str(obj(content.get("body")).get("text") or "")


def media_of(payload: Mapping[str, Any], kind: str, content: Mapping[str, Any]) -> Media | None:
    """Where the file is: WAHA's ``media.url`` (on WAHA's own API); when WAHA did not download
    it (``hasMedia`` but no ``media``), only what the engine said of it."""
    if kind not in MEDIA_TYPES:
        return None
    media = obj(payload.get("media"))
    data = obj(payload.get("_data"))
    url = text_of(media.get("url"))
    size = content.get("fileLength") or data.get("size")
    return Media(
        mime=text_of(media.get("mimetype")) or text_of(content.get("mimetype"))
        or text_of(data.get("mimetype")),
        ref=url, url=url,
        filename=text_of(media.get("filename")) or text_of(content.get("fileName"))
        or text_of(data.get("filename")),
        size=int(size) if isinstance(size, int | str) and str(size).isdigit() else None,
    )


