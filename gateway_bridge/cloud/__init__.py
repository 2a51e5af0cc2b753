"""The official WhatsApp Cloud API (Meta's Graph API) as a gateway adapter.

``parse`` turns Meta's webhooks into events, ``api`` calls the Graph API. Beyond the
``Adapter`` functions it offers ``handshake``: the GET that Meta sends to subscribe a webhook
URL, answered with its ``hub.challenge`` when the ``verify_token`` option matches.
"""

from __future__ import annotations

from gateway_bridge.cloud.api import connection, download, qr, recent, send, upload
from gateway_bridge.cloud.parse import SIGNATURE_HEADER, handshake, parse, sign, verify

__all__ = ["SIGNATURE_HEADER", "connection", "download", "handshake", "parse", "qr", "recent",
           "send", "sign", "upload", "verify"]
