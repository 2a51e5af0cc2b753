"""WhatsApp addresses (JIDs) as Baileys-based and WhatsApp-Web-based gateways spell them.

``5511987654321@s.whatsapp.net`` (Baileys) and ``5511987654321@c.us`` (WhatsApp Web) are a
phone; ``123456789012345@lid`` is WhatsApp's privacy id, which hides the phone (the gateway may
tell the phone beside it: ``remoteJidAlt``, ``senderPn``); ``...@g.us`` is a group;
``status@broadcast`` is the status feed. A device suffix (``:12``) is not part of the address.
"""

from __future__ import annotations

from dataclasses import dataclass

PHONE_SERVERS = ("s.whatsapp.net", "c.us")


@dataclass(frozen=True)
class Jid:
    user: str
    server: str

    @property
    def phone(self) -> str | None:
        """The phone's digits when this JID is a phone number."""
        if self.server in PHONE_SERVERS and self.user.isdigit() and 8 <= len(self.user) <= 15:
            return self.user
        return None

    @property
    def lid(self) -> str | None:
        return f"{self.user}@lid" if self.server == "lid" and self.user else None

    @property
    def is_group(self) -> bool:
        return self.server == "g.us"

    @property
    def is_broadcast(self) -> bool:
        return self.server == "broadcast" or self.server == "newsletter"


def parse(jid: str | None) -> Jid | None:
    """A JID split into user and server, the device suffix dropped; None if it is not one."""
    if not isinstance(jid, str) or "@" not in jid:
        return None
    user, _, server = jid.partition("@")
    user = user.split(":", 1)[0]
    return Jid(user, server.lower())


def phone_of(*jids: str | None) -> str | None:
    """The first phone number among these JIDs (say a ``remoteJid`` and its ``remoteJidAlt``)."""
    for raw in jids:
        j = parse(raw)
        if j is not None and j.phone:
            return j.phone
    return None


def lid_of(*jids: str | None) -> str | None:
    """The first @lid among these JIDs."""
    for raw in jids:
        j = parse(raw)
        if j is not None and j.lid:
            return j.lid
    return None
