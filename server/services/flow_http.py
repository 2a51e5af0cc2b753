"""A flow's HTTP request to an outside API (``flows.HttpRequest``), made with its own timeout
and answered as a ``flows.HttpResult``: the flow's error branch, never an exception, whatever
the other side does (times out, refuses, answers 500 or something that is not JSON)."""

from __future__ import annotations

import httpx

import flows
from server.schema import utcnow

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
