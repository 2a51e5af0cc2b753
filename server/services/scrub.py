"""Credentials taken out of a webhook body before it is kept for a person to read.

A body of a shape no adapter knows is stored whole (``UnsupportedPayload``) and shown to admins
(``GET /api/instances/{name}/unsupported``). Gateways put their own credentials in their
envelopes: Evolution's carries ``apikey`` and ``destination``, our webhook URL with its secret
``?token=``. Credentials go in and never come out, so those values are replaced by
``[redacted]``, wherever they sit; the rest is kept as the gateway sent it.
"""

from __future__ import annotations

import json
import re
from typing import Any

REDACTED = "[redacted]"
# A key whose value is a credential: "apikey", "api_key", "token", "access_token", "secret"...
_KEY = re.compile(r"api_?key|token|secret|password|authorization|signature|hmac", re.I)
# The same in a URL's query: "...?token=abc", "&apikey=abc".
_QUERY = re.compile(r"([?&][^=&#\s\"]*(?:api_?key|token|secret|password|signature)[^=&#\s\"]*=)"
                    r"[^&#\s\"]*", re.I)


def scrubbed(text: str) -> str:
    """``text`` with every credential replaced; unchanged (byte for byte) when it holds none."""
    try:
        data = json.loads(text)
    except ValueError:
        return _QUERY.sub(rf"\1{REDACTED}", text)
    clean = _clean(data)
    return text if clean == data else json.dumps(clean, ensure_ascii=False)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if _KEY.search(str(k)) and value[k] not in (None, "")
                else _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, str):
        return _QUERY.sub(rf"\1{REDACTED}", value)
    return value
