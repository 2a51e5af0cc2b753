"""What may leave through a gateway, and in what form: the rules every send obeys.

- The Cloud API refuses free text more than 24 hours after the customer's last message
  (error 131047, "re-engagement message"): only an approved template may start the talk again.
  We refuse such a send before it leaves, with the reason, instead of learning it from a
  failed request; a template is always allowed.
- A message's file is read from the media store (server.services.media) when it is sent.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from gateway_bridge import Outgoing
from server.schema import Conversation, Message, utcnow
from server.services.media import path_of

CLOUD_WINDOW = timedelta(hours=24)
OUT_FILES = {"image": "image", "document": "document", "audio": "audio", "voice": "audio",
             "video": "document"}


def refusal(provider: str, msg: Message, conv: Conversation) -> str | None:
    """Why this message must not be sent now, in words; None when it may."""
    if provider != "cloud" or msg.type == "template":
        return None
    last = conv.last_inbound_at
    if last is None or utcnow() - last > CLOUD_WINDOW:
        return ("outside WhatsApp's 24-hour window (Cloud API error 131047): the customer's "
                "last message is over 24 hours old, so only an approved template can be sent; "
                "send one with POST /api/conversations/{id}/template")
    return None


def outgoing(msg: Message, data_dir: Path | None) -> Outgoing:
    """The message as the adapters take it. OSError when its file is missing from the store."""
    media = msg.media or {}
    if msg.type == "template":
        return Outgoing(kind="template", text=msg.text, template=media.get("template"))
    kind = OUT_FILES.get(msg.type)
    if kind is None or not media.get("sha256"):
        return Outgoing(text=msg.text)
    if data_dir is None:
        raise OSError("no media folder given to read the file from")
    data = path_of(data_dir, str(media["sha256"])).read_bytes()
    return Outgoing(kind=kind, text=msg.text, data=data, mime=str(media.get("mime")),
                    filename=media.get("filename"))
