"""WAHA (WhatsApp HTTP API, github.com/devlikeapro/waha): one session of a WAHA server per
instance (``options["session"]``, default "default").

``parse.py`` reads its webhooks (HMAC-SHA512 signed), ``message.py`` one message in WAHA's
shape (webhooks and chat history alike), ``api.py`` calls its HTTP API with ``X-Api-Key``.
"""

from gateway_bridge.waha.api import KEY_HEADER, chat_id, connection, download, qr, recent, send
from gateway_bridge.waha.parse import ALGORITHM_HEADER, SIGNATURE_HEADER, parse, sign, verify

__all__ = [
    "ALGORITHM_HEADER",
    "KEY_HEADER",
    "SIGNATURE_HEADER",
    "chat_id",
    "connection",
    "download",
    "parse",
    "qr",
    "recent",
    "send",
    "sign",
    "verify",
]
