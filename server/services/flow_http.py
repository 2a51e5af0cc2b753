"""What a flow fetches from outside: an API's answer (``flows.HttpRequest``), made with its own
timeout and answered as a ``flows.HttpResult`` (the flow's error branch, never an exception,
whatever the other side does: times out, refuses, answers 500 or something that is not JSON),
and the file a message node sends (``fetch_file``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

import flows
from server.schema import utcnow
from server.services import media

MAX_BYTES = 1_000_000  # an answer larger than this is no small lookup: the error branch


def perform(req: flows.HttpRequest) -> flows.HttpResult:
    body = req.body if req.method.upper() not in ("GET", "HEAD") else None
    try:
        with httpx.Client(timeout=req.timeout, follow_redirects=False) as client:
            resp = client.request(req.method, req.url, headers=dict(req.headers),
                                  json=body)
    except httpx.TimeoutException:
        return flows.HttpResult(ok=False, now=utcnow(), error=f"timeout after {req.timeout}s")
    except httpx.HTTPError as exc:
        return flows.HttpResult(ok=False, now=utcnow(), error=type(exc).__name__)
    if not resp.is_success:
        return flows.HttpResult(ok=False, now=utcnow(), status=resp.status_code,
                                error=f"HTTP {resp.status_code}")
    if len(resp.content) > MAX_BYTES:
        return flows.HttpResult(ok=False, now=utcnow(), status=resp.status_code,
                                error="answer too large")
    try:
        data = resp.json() if resp.content else None
    except ValueError:
        return flows.HttpResult(ok=False, now=utcnow(), status=resp.status_code,
                                error="answer is not JSON")
    return flows.HttpResult(ok=True, now=utcnow(), data=data, status=resp.status_code)


def fetch_file(ref: str, data_dir: Path, *, max_bytes: int, mime: str = "",
               filename: str = "") -> dict[str, Any]:
    """The file a flow's message sends, kept in the media store: ``ref`` is a URL (fetched
    here, at most ``max_bytes``) or the sha256 of a file already stored. Raises
    ``media.Refused`` (a ValueError) with the reason when it cannot be had."""
    if re.fullmatch(r"[0-9a-f]{64}", ref):
        path = media.path_of(data_dir, ref)
        if not path.is_file():
            raise media.Refused(f"no stored file {ref}")
        data = path.read_bytes()
    elif ref.startswith(("https://", "http://")):
        try:
            with httpx.Client(timeout=30, follow_redirects=True) as client, \
                    client.stream("GET", ref) as resp:
                resp.raise_for_status()
                chunks, size = [], 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise media.Refused(f"the file at {ref} is over {max_bytes} bytes")
                    chunks.append(chunk)
                data = b"".join(chunks)
                mime = mime or resp.headers.get("content-type", "").split(";")[0]
        except httpx.HTTPError as exc:
            raise media.Refused(f"could not fetch {ref}: {type(exc).__name__}") from None
    else:
        raise media.Refused(f"{ref!r} is neither a URL nor a stored file's sha256")
    return media.keep(data_dir, data, mime or None, max_bytes=max_bytes,
                      filename=filename or None)
