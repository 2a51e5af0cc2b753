"""Evolution API v2 (Baileys): its webhooks (``parse``) and its HTTP API (``api``).

Evolution signs no webhook: the URL we configure on it carries the instance's secret as
``?token=``, which ``verify`` checks. ``InstanceConfig.options["instance"]`` is the instance's
name at Evolution (default: our ``name``); ``api_key`` goes in every call's ``apikey`` header.
"""

from gateway_bridge.evolution.api import connection, download, qr, recent, send
from gateway_bridge.evolution.parse import parse, verify

__all__ = ["connection", "download", "parse", "qr", "recent", "send", "verify"]
