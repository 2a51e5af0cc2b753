"""What we send through a gateway, and the one way every adapter calls a gateway's HTTP API.

Every adapter turns the gateway's answer into the same outcomes here, so the outbox decides
alike for all of them: a transport error, a timeout, a 429 or a 5xx may pass (retry, honouring
``Retry-After``); any other 4xx will not (no retry: a dead letter an admin can replay); a 2xx
whose body is not the JSON promised is the gateway's fault and may pass.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway_bridge.events import SendError

OUT_KINDS = frozenset({"text", "image", "document", "audio", "template"})


@dataclass(frozen=True)
class Outgoing:
    """One message to send: a text, a file (image, document, audio as a voice note) with an
    optional caption in ``text``, or a Cloud API template (``template``: name, language and
    optional components, as the Cloud API takes them)."""

    kind: str = "text"
    text: str = ""
    data: bytes | None = field(default=None, repr=False)
    mime: str | None = None
    filename: str | None = None
    template: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in OUT_KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; known: {sorted(OUT_KINDS)}")
        if self.kind in ("image", "document", "audio") and (not self.data or not self.mime):
            raise ValueError(f"a {self.kind} needs its bytes and MIME type")
        if self.kind == "template" and not (self.template and self.template.get("name")):
            raise ValueError("a template needs a name")

    def b64(self) -> str:
        return base64.b64encode(self.data or b"").decode()


def retry_after(resp: httpx.Response) -> float | None:
    """Seconds a 429 or 503 asks us to wait (``Retry-After`` in seconds), if it says."""
    try:
        return max(0.0, float(resp.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None  # absent, or an HTTP date: our own backoff decides


def call(client: httpx.Client, gateway: str, method: str, url: str, **kwargs: Any) -> Any:
    """One request to a gateway; its JSON answer, or a SendError that says what happened.

    The error names the gateway, the HTTP status and the gateway's own message (which never
    echoes our credentials), never the URL or headers we sent.
    """
    try:
        resp = client.request(method, url, **kwargs)
    except httpx.TimeoutException:
        raise SendError(f"{gateway} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise SendError(f"{gateway} unreachable: {type(exc).__name__}") from None
    if resp.status_code >= 400:
        code, said = _error_of(resp)
        raise SendError(f"{gateway} answered {resp.status_code}" + (f": {said}" if said else ""),
                        retryable=resp.status_code >= 500 or resp.status_code == 429,
                        retry_after=retry_after(resp), code=code or str(resp.status_code))
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        raise SendError(f"{gateway} answered {resp.status_code} with a body that is not JSON"
                        ) from None


def raw(client: httpx.Client, gateway: str, url: str, *, max_bytes: int,
        **kwargs: Any) -> tuple[bytes, str | None]:
    """Download a file from a gateway, refusing it past ``max_bytes`` as it streams (a
    ``ValueError``); returns its bytes and the Content-Type the gateway gave."""
    try:
        with client.stream("GET", url, **kwargs) as resp:
            if resp.status_code >= 400:
                resp.read()
                code, said = _error_of(resp)
                raise SendError(f"{gateway} answered {resp.status_code} for the file"
                                + (f": {said}" if said else ""),
                                retryable=resp.status_code >= 500 or resp.status_code == 429,
                                retry_after=retry_after(resp), code=code or str(resp.status_code))
            chunks, size = [], 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ValueError(f"file is larger than the limit of {max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks), resp.headers.get("content-type")
    except httpx.TimeoutException:
        raise SendError(f"{gateway} did not send the file in time") from None
    except httpx.HTTPError as exc:
        raise SendError(f"{gateway} unreachable: {type(exc).__name__}") from None


def inline(data: str, *, max_bytes: int, gateway: str) -> bytes:
    """A file a gateway carried inline in base64 (or as a data: URL), refused past
    ``max_bytes`` before decoding a huge string and after (ValueError); SendError, not
    retryable, when it is not base64."""
    if data.startswith("data:") and "," in data:  # a data URL: the part after the comma
        data = data.split(",", 1)[1]
    if len(data) * 3 // 4 > max_bytes + 3:
        raise ValueError(f"file is larger than the limit of {max_bytes} bytes")
    try:
        content = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise SendError(f"{gateway} gave a file that is not base64", retryable=False) from None
    if len(content) > max_bytes:
        raise ValueError(f"file is larger than the limit of {max_bytes} bytes")
    return content


def _error_of(resp: httpx.Response) -> tuple[str | None, str | None]:
    """The gateway's own error code and words, from the JSON shapes the three gateways use."""
    try:
        body = resp.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    err = body.get("error")
    if isinstance(err, dict):  # Cloud: {"error": {"code": 131047, "message": ..., ...}}
        code = err.get("code")
        data = err.get("error_data")
        details = data.get("details") if isinstance(data, dict) else None
        said = " — ".join(str(x) for x in (err.get("message"), details) if x)
        return (str(code) if code is not None else None), (said[:300] or None)
    resp_part = body.get("response")  # Evolution: {"status": 400, "response": {"message": [..]}}
    if isinstance(resp_part, dict) and resp_part.get("message"):
        return None, str(resp_part["message"])[:300]
    for key in ("message", "error", "exception"):  # WAHA and others
        if isinstance(body.get(key), str):
            return None, body[key][:300]
    return None, None
