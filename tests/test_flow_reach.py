"""Where a flow's HTTP node and message files may go: public addresses and the hosts the
company named, never the cloud's metadata service or this machine's own services unless named,
and not by a redirect either."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

import flows
from server.services import flow_http, media
from server.services.flow_http import NotAllowed, Reach
from server.settings import Settings

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class _Api(BaseHTTPRequestHandler):
    elsewhere = ""  # where /moved sends the client

    seen: list[tuple[int, str, str | None]] = []  # (port, path, X-Api-Key) of each request

    def do_GET(self) -> None:  # noqa: N802
        _Api.seen.append((self.server.server_address[1], self.path,
                          self.headers.get("X-Api-Key")))
        if self.path.startswith("/slow/"):  # a hop that answers late, then another
            time.sleep(1.0)
            self.send_response(302)
            self.send_header("Location", f"/slow/{int(self.path.split('/')[-1]) + 1}")
            self.end_headers()
            return
        if self.path in ("/old", "/away"):  # an API that moved: here, or to another host
            self.send_response(308)
            where = "" if self.path == "/old" else self.elsewhere
            self.send_header("Location", f"{where}/orders/1")
            self.end_headers()
            return
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", f"{self.elsewhere}/file.png")
            self.end_headers()
            return
        body, kind = (PNG, "image/png") if self.path == "/file.png" else (b'{"status": "ok"}',
                                                                          "application/json")
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - /orders moved to /orders/ (a trailing slash)
        _Api.seen.append((self.server.server_address[1], self.path, "POST"))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status = 301 if self.path == "/orders" else 307 if self.path == "/kept" else 200
        self.send_response(status)
        if status != 200:
            self.send_header("Location", "/orders/")
            self.send_header("Content-Length", "0")
        else:
            self.send_header("Content-Length", "15")
        self.end_headers()
        if status == 200:
            self.wfile.write(b'{"created": 1} ')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def two_servers() -> Iterator[tuple[int, int]]:
    """Two local APIs; the first redirects /moved to the second."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Api) for _ in range(2)]
    _Api.elsewhere = f"http://127.0.0.1:{servers[1].server_address[1]}"
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield servers[0].server_address[1], servers[1].server_address[1]
    finally:
        for srv in servers:
            srv.shutdown()


def _request(url: str) -> httpx.Request:
    return httpx.Request("GET", url)


def test_private_addresses_are_refused_unless_named() -> None:
    reach = Reach()
    for url in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.5:8080/pedidos",
                "http://127.0.0.1:6379/", "http://[::1]/", "http://192.168.0.10/"):
        with pytest.raises(NotAllowed, match="ATENDE_FLOW_HTTP_HOSTS"):
            reach.check(_request(url))
    reach.check(_request("https://8.8.8.8/dns"))  # public: allowed
    named = Reach(hosts=frozenset({"10.0.0.5:8080", "erp.interno"}))
    named.check(_request("http://10.0.0.5:8080/pedidos"))
    with pytest.raises(NotAllowed):
        named.check(_request("http://10.0.0.5:5432/"))  # named with its port: only that port
    Reach(private=True).check(_request("http://127.0.0.1:6379/"))


def test_disguised_private_addresses_and_unresolvable_names_are_refused() -> None:
    reach = Reach()
    for url in ("http://[::ffff:127.0.0.1]/", "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 metadata
                "http://[2002:a9fe:a9fe::1]/", "http://2130706433/",  # 6to4; 127.0.0.1 as a number
                "http://localhost./", "http://nada.invalid/"):
        with pytest.raises(NotAllowed):
            reach.check(_request(url))


def test_hosts_are_named_as_a_company_writes_them() -> None:
    settings = Settings(flow_http_hosts=["ERP.Interno.", "[fd00::1]:8080", " 10.0.0.5 ",
                                         "10.0.0.6:80", "faß.de"])
    reach = Reach.of(settings)
    assert reach.hosts == {"erp.interno", "[fd00::1]:8080", "10.0.0.5", "10.0.0.6:80",
                           "xn--fa-hia.de"}  # as httpx connects to it
    with pytest.raises(NotAllowed):
        reach.check(_request("http://10.0.0.6:8080/"))  # ":80" named that port only
    for url in ("http://erp.interno.:8080/", "http://ERP.INTERNO/x", "http://[fd00::1]:8080/",
                "http://10.0.0.5:9999/"):
        reach.check(_request(url))  # named: no lookup, no refusal
    with pytest.raises(NotAllowed):
        reach.check(_request("http://[fd00::1]:9090/"))


def test_a_template_that_makes_no_url_takes_the_error_branch() -> None:
    result = flow_http.perform(flows.HttpRequest("GET", "http://[::1/pedidos", 2), Reach())
    assert not result.ok and result.error.startswith("invalid URL")


def test_a_flow_request_to_an_unnamed_private_host_takes_the_error_branch(
        two_servers: tuple[int, int]) -> None:
    port, _ = two_servers
    ask = flows.HttpRequest("GET", f"http://127.0.0.1:{port}/orders/1", 2, {}, None, {})
    refused = flow_http.perform(ask, Reach())
    assert not refused.ok and "private address (127.0.0.1)" in refused.error
    answered = flow_http.perform(ask, Reach(hosts=frozenset({"127.0.0.1"})))
    assert answered.ok and answered.data == {"status": "ok"}


def test_a_flow_request_follows_a_redirect_on_its_host_only(
        two_servers: tuple[int, int]) -> None:
    """An API that moved to a new path is followed; one that points to another host is not,
    even a named one: the node's API key would go with the request."""
    first, second = two_servers
    both = Reach(hosts=frozenset({f"127.0.0.1:{first}", f"127.0.0.1:{second}"}))
    key = {"X-Api-Key": "sk-erp-123"}
    _Api.seen.clear()
    moved = flow_http.perform(flows.HttpRequest(
        "GET", f"http://127.0.0.1:{first}/old", 2, key, None, {}), both)
    assert moved.ok and moved.data == {"status": "ok"}
    assert _Api.seen == [(first, "/old", "sk-erp-123"), (first, "/orders/1", "sk-erp-123")]
    away = flow_http.perform(flows.HttpRequest(
        "GET", f"http://127.0.0.1:{first}/away", 2, key, None, {}), both)
    assert not away.ok and away.status == 308 and "another host" in away.error
    assert all(port == first for port, _, _ in _Api.seen)  # the key never left its host


def test_a_redirect_that_would_turn_a_post_into_a_get_is_not_followed(
        two_servers: tuple[int, int]) -> None:
    """Browsers make a 301 POST a GET without its body; the order would not be created and
    the flow would go on as if it had been."""
    port, _ = two_servers
    named = Reach(hosts=frozenset({"127.0.0.1"}))
    moved = flow_http.perform(flows.HttpRequest(
        "POST", f"http://127.0.0.1:{port}/orders", 2, {}, {"sku": "A1"}, {}), named)
    assert not moved.ok and moved.status == 301 and "from POST to GET" in moved.error
    kept = flow_http.perform(flows.HttpRequest(  # 307 keeps the method and the body
        "POST", f"http://127.0.0.1:{port}/kept", 2, {}, {"sku": "A1"}, {}), named)
    assert kept.ok and kept.data == {"created": 1}


def test_redirects_share_the_nodes_timeout(two_servers: tuple[int, int]) -> None:
    port, _ = two_servers
    started = time.monotonic()
    result = flow_http.perform(flows.HttpRequest(
        "GET", f"http://127.0.0.1:{port}/slow/1", 2, {}, None, {}),
        Reach(hosts=frozenset({"127.0.0.1"})))
    assert not result.ok and result.error == "timeout after 2s"
    assert time.monotonic() - started < 3.5  # five hops of 1 s each took 5 s and more


def test_a_redirect_cannot_take_a_file_fetch_somewhere_unnamed(
        two_servers: tuple[int, int], tmp_path: Path) -> None:
    first, second = two_servers
    only_first = Reach(hosts=frozenset({f"127.0.0.1:{first}"}))
    kept = flow_http.fetch_file(f"http://127.0.0.1:{first}/file.png", tmp_path,
                                max_bytes=1000, reach=only_first)
    assert kept["mime"] == "image/png"
    with pytest.raises(media.Refused, match="private address"):
        flow_http.fetch_file(f"http://127.0.0.1:{first}/moved", tmp_path, max_bytes=1000,
                             reach=only_first)
    both = Reach(hosts=frozenset({f"127.0.0.1:{first}", f"127.0.0.1:{second}"}))
    moved = flow_http.fetch_file(f"http://127.0.0.1:{first}/moved", tmp_path, max_bytes=1000,
                                 reach=both)
    assert moved["sha256"] == kept["sha256"]


def test_a_name_the_resolver_does_not_answer_takes_the_error_branch_within_the_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The outside part here is the DNS server: the system's resolver is made to hang for one
    # name, as it does when a DNS server drops queries (tens of seconds of retries)
    answered, real = threading.Event(), flow_http.socket.getaddrinfo

    def resolver(host: str, *args: object, **kwargs: object) -> object:
        if host == "lento.example":
            answered.wait(30)
            raise OSError("no answer")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(flow_http.socket, "getaddrinfo", resolver)
    try:
        result = flow_http.perform(flows.HttpRequest("GET", "http://lento.example/pedidos", 0.5),
                                   Reach())
        assert not result.ok
        assert result.error == "lento.example did not resolve within 0.5s"
        assert not answered.is_set()  # the flow went on while the lookup still hung
    finally:
        answered.set()


class _Slow(BaseHTTPRequestHandler):
    """An API that sends its answer a byte every half second, or one far over the limit."""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        try:
            if self.path == "/huge":
                self.wfile.write(b'{"x": "' + b"a" * (flow_http.MAX_BYTES * 3) + b'"}')
                return
            for byte in b'{"status": "ok", "pad": "' + b"x" * 40 + b'"}':
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:  # the client stopped reading: as it should
            pass

    def log_message(self, *args: object) -> None:
        pass


def test_an_answer_is_cut_at_the_nodes_timeout_and_at_its_size() -> None:
    """The node's timeout is for the whole answer, not for each read; an answer over the
    limit is refused as it arrives, not held whole first."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        started = time.monotonic()
        slow = flow_http.perform(flows.HttpRequest("GET", f"{url}/slow", 2, {}, None, {}),
                                 Reach(private=True))
        assert (slow.ok, slow.error) == (False, "timeout after 2s")
        assert time.monotonic() - started < 10  # the answer would take 34 s
        huge = flow_http.perform(flows.HttpRequest("GET", f"{url}/huge", 10, {}, None, {}),
                                 Reach(private=True))
        assert (huge.ok, huge.error) == (False, "answer too large")
    finally:
        srv.shutdown()
