"""What one Cloud API message holds: its type, text, file and the message it points at.

Kept apart from parse.py, which reads the webhook's envelope (entries, changes, statuses).
"""

from __future__ import annotations

from typing import Any

from gateway_bridge.events import Media

MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")


def part_of(content: dict[str, Any], key: str) -> dict[str, Any]:
    part = content.get(key)
    return part if isinstance(part, dict) else {}


def str_of(part: dict[str, Any], key: str) -> str:
    value = part.get(key)
    return value if isinstance(value, str) else ""


def dicts(items: Any) -> list[dict[str, Any]]:
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


def content_of(content: dict[str, Any], kind: str
             ) -> tuple[str, str, Media | None, str | None]:
    """(our type, text, media, id it points at) of one message's content."""
    part = part_of(content, kind)
    if kind == "text":
        return "text", str_of(part, "body"), None, None
    if kind in MEDIA_KINDS:
        if not part:
            return "unsupported", "", None, None
        size = part.get("file_size")
        media = Media(mime=str_of(part, "mime_type") or None, ref=str_of(part, "id") or None,
                      url=str_of(part, "url") or None, filename=str_of(part, "filename") or None,
                      size=size if isinstance(size, int) else None,
                      sha256=str_of(part, "sha256") or None)
        ours = "voice" if kind == "audio" and part.get("voice") is True else kind
        return ours, str_of(part, "caption"), media, None
    if kind == "location":
        return "location", _location(part), None, None
    if kind == "contacts":
        return "contact", _contacts(content.get("contacts")), None, None
    if kind == "reaction":  # an empty emoji takes a reaction back
        return "reaction", str_of(part, "emoji"), None, str_of(part, "message_id") or None
    if kind == "interactive":
        reply = part_of(part, str(part.get("type")))
        if part.get("type") in ("button_reply", "list_reply"):
            return "interactive", str_of(reply, "title"), None, None
        if part.get("type") == "nfm_reply":  # a WhatsApp Flow's answers, kept in raw
            return "interactive", str_of(reply, "body"), None, None
        return "unsupported", "", None, None  # e.g. with errors[]: Meta could not read it
    if kind == "button":  # a template's quick reply; its payload stays in raw
        return "button", str_of(part, "text"), None, None
    if kind == "system":  # e.g. user_changed_number
        return "system", str_of(part, "body"), None, None
    if kind == "request_welcome":  # the customer opened the chat for the first time
        return "system", "", None, None
    if kind == "order":  # a cart from the catalog: for a person, readable here and in raw
        return "unsupported", _order(part), None, None
    return "unsupported", "", None, None


def _location(loc: dict[str, Any]) -> str:
    where = " ".join(x for x in (str_of(loc, "name"), str_of(loc, "address")) if x)
    lat, lon = loc.get("latitude"), loc.get("longitude")
    return f"{where} ({lat}, {lon})".strip()


def _contacts(cards: Any) -> str:
    out = []
    for card in dicts(cards):
        name = str_of(part_of(card, "name"), "formatted_name")
        phones = [str_of(p, "phone") for p in dicts(card.get("phones"))]
        out.append(" ".join(x for x in (name, ", ".join(p for p in phones if p)) if x))
    return "; ".join(x for x in out if x)


def _order(order: dict[str, Any]) -> str:
    items = [f"{i.get('quantity')} x {i.get('product_retailer_id')} "
             f"({i.get('item_price')} {i.get('currency')})"
             for i in dicts(order.get("product_items"))]
    return " ".join(x for x in ("Order:", "; ".join(items), str_of(order, "text")) if x)
