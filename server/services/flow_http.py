"""What a flow fetches from outside: an API's answer (``flows.HttpRequest``), made with its own
timeout and answered as a ``flows.HttpResult`` (the flow's error branch, never an exception,
whatever the other side does: times out, refuses, answers 500 or something that is not JSON),
and the file a message node sends (``fetch_file``).

Whoever edits a flow chooses the URL, so both go only where ``Reach`` allows: a host that
resolves to public addresses, or one the company named (``ATENDE_FLOW_HTTP_HOSTS``). Otherwise a
flow would be a way into the cloud's metadata service (169.254.169.254) or this machine's own
databases. Each request is checked as it leaves, a redirect's too. A name resolved again between
the check and the connection (DNS rebinding) is not caught, nor is a service of this machine
listening on its public address: for those, put the server behind an egress proxy. The name is
looked up within the node's own timeout, as the connection is made."""

from __future__ import annotations

import functools
import ipaddress
import json
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as Late
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

import flows
from server.schema import utcnow
from server.services import media
from server.settings import Settings

MAX_BYTES = 1_000_000  # an answer larger than this is no small lookup: the error branch
MAX_REDIRECTS = 5
RESOLVERS = 4  # lookups at once; one the resolver never answers holds a thread until it does


class NotAllowed(ValueError):
    """A URL a flow may not reach; the message says why and what allows it."""


@dataclass(frozen=True)
class Reach:
    """Where flows may send requests: public addresses, ``hosts`` (host or host:port) named by
    the company, and with ``private`` any address at all."""

    hosts: frozenset[str] = frozenset()
    private: bool = False

    @classmethod
    def of(cls, settings: Settings) -> Reach:
        return cls(frozenset(_named(h) for h in settings.flow_http_hosts if h.strip()),
                   settings.flow_http_private)

    def check(self, request: httpx.Request) -> None:
        """Raise ``NotAllowed`` for a request to a host that is neither named nor public (an
        httpx request hook: it runs for every redirect too). The host is the one httpx
        connects to (``raw_host``: "faß.de" as xn--fa-hia.de, not as the "fass.de" Python's
        resolver would make of it); one that does not resolve is refused, not waved on."""
        host = _host(request.url)
        port = _port(request.url)
        if self.private or host in self.hosts or _at(host, port) in self.hosts:
            return
        found = _resolve(host, port, _connect_timeout(request))
        for address in {str(info[4][0]).split("%")[0] for info in found}:
            if not _public(ipaddress.ip_address(address)):
                raise NotAllowed(f"{host} is a private address ({address}); name it in "
                                 "ATENDE_FLOW_HTTP_HOSTS to let flows reach it")


def _connect_timeout(request: httpx.Request) -> float | None:
    """The node's timeout as httpx carries it on the request (None: none was set)."""
    timeout = request.extensions.get("timeout") or {}
    value = timeout.get("connect")
    return float(value) if value is not None else None


@functools.cache
def _resolver() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(RESOLVERS, thread_name_prefix="flow-dns")


def _resolve(host: str, port: int, timeout: float | None) -> list[Any]:
    """The host's addresses, within the node's timeout: ``getaddrinfo`` takes no timeout, and
    a resolver that does not answer would hold the conversation's turn for as long as the
    system's resolver retries (tens of seconds), past the timeout the flow's author set."""
    future = _resolver().submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        return future.result(timeout=timeout)
    except Late:
        future.cancel()  # still queued behind other lookups: never run it
        raise NotAllowed(f"{host} did not resolve within {timeout:g}s") from None
    except (OSError, UnicodeError):
        raise NotAllowed(f"{host} does not resolve") from None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Global, and so is any IPv4 address it carries (IPv4-mapped, 6to4, NAT64: 64:ff9b::a9fe:
    a9fe is 169.254.169.254 to a NAT64 gateway)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if inner is not None and not inner.is_global:
            return False
    return ip.is_global


def _named(entry: str) -> str:
    """A host as the company wrote it, read by the parser ``check`` reads requests with (an
    IDN as httpx connects to it, lower case, no final dot): "host" or "host:port"."""
    entry = entry.strip()
    if entry.count(":") > 1 and not entry.startswith("["):
        entry = f"[{entry}]"  # a bare IPv6 address
    try:
        url = httpx.URL(f"host://{entry}")  # no scheme with a default port to drop: ":80" stays
    except httpx.InvalidURL:
        return entry.lower()  # no host at all: it names nothing, and allows nothing
    return _at(_host(url), url.port) if url.port else _host(url)


def _host(url: httpx.URL) -> str:
    return url.raw_host.decode("ascii").lower().rstrip(".")


def _at(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def perform(req: flows.HttpRequest, reach: Reach) -> flows.HttpResult:
    """The request, answered within the node's timeout as a whole (httpx's applies to each
    read: an API sending a byte a second took half a minute past a 3 s timeout), its answer
    read a chunk at a time up to ``MAX_BYTES`` (a 300 MB answer was held whole in memory).
    Redirects are followed on the same host (``_onward``)."""
    body = req.body if req.method.upper() not in ("GET", "HEAD") else None
    deadline = time.monotonic() + req.timeout
    late = f"timeout after {req.timeout}s"
    try:
        with httpx.Client(timeout=req.timeout, follow_redirects=False,
                          event_hooks={"request": [reach.check]}) as client:
            request = client.build_request(req.method, req.url, headers=dict(req.headers),
                                           json=body)
            for _ in range(MAX_REDIRECTS + 1):
                resp = client.send(request, stream=True)
                onward = resp.next_request
                if onward is None:
                    break
                resp.close()
                if problem := _onward(request, onward):
                    return flows.HttpResult(ok=False, now=utcnow(), status=resp.status_code,
                                            error=problem)
                left = deadline - time.monotonic()
                if left <= 0:
                    return flows.HttpResult(ok=False, now=utcnow(), error=late)
                onward.extensions["timeout"] = httpx.Timeout(left).as_dict()  # the rest only
                request = onward
            else:
                return flows.HttpResult(ok=False, now=utcnow(), status=resp.status_code,
                                        error=f"more than {MAX_REDIRECTS} redirects")
            try:
                if not resp.is_success:
                    return flows.HttpResult(ok=False, now=utcnow(), status=resp.status_code,
                                            error=f"HTTP {resp.status_code}")
                content, size = [], 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > MAX_BYTES:
                        return flows.HttpResult(ok=False, now=utcnow(),
                                                status=resp.status_code,
                                                error="answer too large")
                    if time.monotonic() > deadline:
                        return flows.HttpResult(ok=False, now=utcnow(), error=late)
                    content.append(chunk)
            finally:
                resp.close()
    except NotAllowed as exc:
        return flows.HttpResult(ok=False, now=utcnow(), error=str(exc))
    except httpx.InvalidURL as exc:  # a template filled into no URL at all
        return flows.HttpResult(ok=False, now=utcnow(), error=f"invalid URL: {exc}")
    except httpx.TimeoutException:
        return flows.HttpResult(ok=False, now=utcnow(), error=late)
    except httpx.HTTPError as exc:
        return flows.HttpResult(ok=False, now=utcnow(), error=type(exc).__name__)
    try:
        data = json.loads(b"".join(content)) if size else None
    except ValueError:
        return flows.HttpResult(ok=False, now=utcnow(), status=resp.status_code,
                                error="answer is not JSON")
    return flows.HttpResult(ok=True, now=utcnow(), data=data, status=resp.status_code)


def _onward(was: httpx.Request, to: httpx.Request) -> str | None:
    """Why a redirect is not followed, or None. Only on the same host, and never from https
    to http: a node's headers often carry an API key, and httpx drops only ``Authorization``
    when a redirect leaves its host ("X-Api-Key" would go to whoever the API points at). Nor
    one that turns a POST into a GET (301/302/303, as browsers do): the request would not be
    made, and its answer taken for the request's."""
    if was.url.scheme == "https" and to.url.scheme != "https":
        return "redirected from https to http; not followed"
    a, b = was.url, to.url
    upgrade = (a.scheme, b.scheme, _port(a), _port(b)) == ("http", "https", 80, 443)
    if _host(b) != _host(a) or (_port(b) != _port(a) and not upgrade):
        where = _at(_host(b), _port(b))
        return f"redirected to another host ({where}); not followed: use that address"
    if to.method != was.method:
        return (f"redirected with a change from {was.method} to {to.method}; not followed: "
                f"use the new address ({b})")
    return None


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def fetch_file(ref: str, data_dir: Path, *, max_bytes: int, reach: Reach, mime: str = "",
               filename: str = "") -> dict[str, Any]:
    """The file a flow's message sends, kept in the media store: ``ref`` is a URL (fetched
    here, at most ``max_bytes``, where ``reach`` allows) or the sha256 of a file already
    stored. Raises ``media.Refused`` (a ValueError) with the reason when it cannot be had."""
    if re.fullmatch(r"[0-9a-f]{64}", ref):
        path = media.path_of(data_dir, ref)
        if not path.is_file():
            raise media.Refused(f"no stored file {ref}")
        data = path.read_bytes()
    elif ref.startswith(("https://", "http://")):
        try:
            with httpx.Client(timeout=30, follow_redirects=True,
                              event_hooks={"request": [reach.check]}) as client, \
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
        except (NotAllowed, httpx.InvalidURL) as exc:
            raise media.Refused(f"could not fetch {ref}: {exc}") from None
        except httpx.HTTPError as exc:
            raise media.Refused(f"could not fetch {ref}: {type(exc).__name__}") from None
    else:
        raise media.Refused(f"{ref!r} is neither a URL nor a stored file's sha256")
    return media.keep(data_dir, data, mime or None, max_bytes=max_bytes,
                      filename=filename or None)
