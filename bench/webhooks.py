"""Webhook intake: acknowledged webhooks per second and latency, as ratios against a bare endpoint.

``POST /webhooks/{provider}/{name}`` of a real ``atende serve`` (the assistant off on the number,
so no model runs; the turn is still scheduled and taken by the in-process workers, as in
production) against a bare FastAPI endpoint on the same path that reads the body and answers
200, each served by uvicorn in its own process, driven from this process (httpx, async) with N
requests in flight. The two take turns in ``--rounds`` alternating rounds per level (so the
machine's other load falls on both alike), each round starting once the atende server is idle
(the turns the last round scheduled have run). Every webhook is a distinct message from one of
``--customers`` customers; after the run every acknowledged webhook must be stored exactly once
(rows counted). Providers: the built-in simulator (HMAC-signed) and Evolution (its fake gateway from
``tests/gateways/fake_evolution.py`` answers the connection checks; nothing is sent).

``--phases`` runs the server a second time with timers around each step of the webhook (route,
instance lookup, verify and parse, the wait for the writer, its batches, the one-by-one path,
scheduling the turn, huey's enqueue, SQL statements) and prints where the time per webhook goes;
``--cprofile DIR`` also writes cProfile statistics of the event loop and the writer thread.
Both slow the server: their acks/s are not the figures to compare.

Run: ``.venv/bin/python bench/webhooks.py [--requests 3000] [--concurrency 16 32]
[--providers simulator evolution] [--db sqlite|postgresql] [--phases] [--cprofile DIR]
[--json FILE]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN = {"Authorization": "Bearer test-admin-token"}
EVO_INSTANCE = "sales-01"  # the fake Evolution's instance name


# -- the servers ---------------------------------------------------------------------------------

def serve_bare(port: int) -> None:
    """The baseline: the same path, the body read, 200 with a small JSON answer."""
    import uvicorn

    app = FastAPI()

    @app.post("/webhooks/{provider}/{instance}")
    async def receive(provider: str, instance: str, request: Request) -> dict[str, int]:
        await request.body()
        return {"stored": 1, "duplicates": 0, "ignored": 0, "statuses": 0}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


@dataclass
class Proc:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start(cmd: list[str], env: dict[str, str], log: Path, port: int) -> Proc:
    import httpx

    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return Proc(url, proc, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"server did not start:\n{log.read_text()[-4000:]}")


@contextmanager
def bare_server(folder: Path) -> Iterator[Proc]:
    from tests.conftest import free_port

    port = free_port()
    srv = start([sys.executable, __file__, "--serve-bare", str(port)], dict(os.environ),
                folder / "bare.log", port)
    try:
        yield srv
    finally:
        srv.stop()


@dataclass
class Atende:
    srv: Proc
    db_url: str
    data_dir: Path


def atende_env(data: Path, db_url: str, **extra: str) -> dict[str, str]:
    """``atende serve`` as shipped, on its own data folder and database; the tests' admin token
    and secret key; the product's turn debounce (the tests shorten it)."""
    from tests.conftest import server_env

    return server_env(data, ATENDE_DATABASE_URL=db_url, ATENDE_TURN_DEBOUNCE_SECONDS="1.5",
                      **extra)


@contextmanager
def atende_server(folder: Path, db: str, *, instrument: str | None = None,
                  **extra: str) -> Iterator[Atende]:
    """A fresh database and data folder; ``instrument`` ("phases" or a cProfile folder) runs the
    server through this script's timers instead of ``atende serve``."""
    from tests.conftest import ATENDE, free_port, fresh_database

    data = Path(tempfile.mkdtemp(prefix="atende-bench-", dir=folder))
    with fresh_database(db, data) as url:
        env = atende_env(data, url, **extra)
        port = free_port()
        if instrument is None:
            cmd = [*ATENDE, "serve", "--port", str(port)]
        else:
            cmd = [sys.executable, __file__, "--serve-instrumented", str(port),
                   "--cprofile-out", "" if instrument == "phases" else instrument]
        srv = start(cmd, env, data / "server.log", port)
        try:
            yield Atende(srv, url, data)
        finally:
            srv.stop()


# -- what is posted ------------------------------------------------------------------------------

@dataclass
class Target:
    """Where one provider's webhooks go, and how a body is made for a message id."""

    provider: str
    instance: str
    url: str
    body: Callable[[str, str, str], tuple[bytes, dict[str, str]]]  # (id, phone, text)
    instance_id: int = 0
    stop: Callable[[], None] = lambda: None


def phone_of(k: int) -> str:
    return f"55119{70000000 + k:08d}"


def simulator_target(a: Atende) -> Target:
    """The simulator number ``demo`` that every server makes, its assistant turned off."""
    import httpx

    from gateway_bridge import simulator as wire
    from server.secretbox import unseal

    r = httpx.patch(f"{a.srv.url}/api/instances/demo", json={"ai_enabled": False},
                    headers=ADMIN, timeout=30)
    r.raise_for_status()
    iid, sealed = rows(a.db_url, "SELECT id, webhook_secret FROM instances WHERE name='demo'")[0]
    secret = unseal(sealed)

    def body(mid: str, phone: str, text: str) -> tuple[bytes, dict[str, str]]:
        raw = json.dumps({"event": "message", "id": mid, "from": phone, "name": "Cliente",
                          "text": text, "timestamp": int(time.time())}).encode()
        return raw, {wire.SIGNATURE_HEADER: wire.sign(raw, secret),
                     "Content-Type": "application/json"}

    return Target("simulator", "demo", f"{a.srv.url}/webhooks/simulator/demo", body, iid)


def evolution_target(a: Atende, name: str = "bench-evo") -> Target:
    """An Evolution number made through the admin API with ``ai_enabled: false``, its gateway
    the fake Evolution (asked only by the connection checks)."""
    import httpx

    from tests.gateways import fake_evolution as evo
    from tests.gateways.fakehttp import FakeHTTP

    fake = FakeHTTP().start()
    evo.FakeEvolution(fake, instance=name)
    r = httpx.post(f"{a.srv.url}/api/instances", headers=ADMIN, timeout=30, json={
        "name": name, "provider": "evolution", "api_url": fake.url, "api_key": evo.API_KEY,
        "options": {"instance": name}, "ai_enabled": False})
    r.raise_for_status()
    secret = r.json()["webhook_secret"]
    iid = rows(a.db_url, "SELECT id FROM instances WHERE name=?", name)[0][0]

    def body(mid: str, phone: str, text: str) -> tuple[bytes, dict[str, str]]:
        return (evo.message(mid, phone, text, instance=name, name="Cliente"),
                {"Content-Type": "application/json"})

    return Target("evolution", name, f"{a.srv.url}/webhooks/evolution/{name}?token={secret}",
                  body, iid, stop=fake.stop)


def rows(db_url: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Read the server's database directly, whichever kind it is."""
    from server.db import make_engine

    engine = make_engine(db_url)
    if engine.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql, tuple(args)).fetchall()]
    finally:
        engine.dispose()


# -- the load ------------------------------------------------------------------------------------

@dataclass
class Post:
    url: str
    body: bytes
    headers: dict[str, str]
    mid: str = ""


@dataclass
class Run:
    concurrency: int
    requests: int
    wall_s: float
    latencies: list[float]
    statuses: dict[int, int]
    acked: list[str] = field(default_factory=list)  # ids answered 200
    answers: dict[str, dict[str, int]] = field(default_factory=dict)
    server_cpu_s: float = 0.0  # CPU the serving process used during the run (all its threads)

    @property
    def cpu_ms_per_webhook(self) -> float:
        return self.server_cpu_s * 1000 / max(1, len(self.acked))

    @property
    def acks_per_s(self) -> float:
        return len(self.acked) / self.wall_s

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    def figures(self) -> dict[str, Any]:
        return {"concurrency": self.concurrency, "requests": self.requests,
                "acked": len(self.acked), "wall_s": self.wall_s, "acks_per_s": self.acks_per_s,
                "p50_ms": self.pct(0.50) * 1000, "p99_ms": self.pct(0.99) * 1000,
                "mean_ms": statistics.fmean(self.latencies) * 1000,
                "server_cpu_ms_per_webhook": self.cpu_ms_per_webhook,
                "statuses": {str(k): v for k, v in self.statuses.items()}}


def merge(runs: list[Run]) -> Run:
    """Rounds of one level as one run: their walls, latencies and answers together."""
    out = Run(runs[0].concurrency, 0, 0.0, [], {})
    for r in runs:
        out.requests += r.requests
        out.wall_s += r.wall_s
        out.latencies += r.latencies
        for k, v in r.statuses.items():
            out.statuses[k] = out.statuses.get(k, 0) + v
        out.acked += r.acked
        out.answers.update(r.answers)
        out.server_cpu_s += r.server_cpu_s
    return out


async def _drive(posts: list[Post], concurrency: int) -> Run:
    """``concurrency`` workers, each with its own client and connection (kept alive), made
    before the clock starts: one client's pool shared by all of them costs the driver more
    than the bare server takes to answer (httpcore scans its connections per request), and a
    client made in the run costs its TLS context (certificates loaded, ~25 ms of CPU each)."""
    import ssl

    import httpx

    todo = iter(posts)
    lat: list[float] = []
    statuses: dict[int, int] = {}
    acked: list[str] = []
    answers: dict[str, dict[str, int]] = {}
    tls = ssl.create_default_context()
    clients = [httpx.AsyncClient(timeout=120, verify=tls) for _ in range(concurrency)]

    async def worker(client: httpx.AsyncClient) -> None:
        for p in todo:
            t = time.perf_counter()
            try:
                r = await client.post(p.url, content=p.body, headers=p.headers)
                code = r.status_code
            except httpx.HTTPError:
                code = 0
            lat.append(time.perf_counter() - t)
            statuses[code] = statuses.get(code, 0) + 1
            if code == 200:
                acked.append(p.mid)
                answers[p.mid] = r.json()

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in clients))
        wall = time.perf_counter() - t0
    finally:
        for c in clients:
            await c.aclose()
    return Run(concurrency, len(posts), wall, lat, statuses, acked, answers)


def drive(posts: list[Post], concurrency: int, pid: int | None = None) -> Run:
    """The run; with ``pid``, the CPU that process (the server) spent during it."""
    before = cpu_seconds(pid) if pid else 0.0
    run = asyncio.run(_drive(posts, concurrency))
    if pid:
        run.server_cpu_s = cpu_seconds(pid) - before
    return run


def make_posts(target: Target, n: int, customers: int, tag: str) -> list[Post]:
    """``n`` distinct messages from ``customers`` customers, in turn."""
    out = []
    for i in range(n):
        mid = f"bench-{tag}-{i}-{uuid.uuid4().hex[:8]}"
        raw, headers = target.body(mid, phone_of(i % customers), f"mensagem {i} do teste")
        out.append(Post(target.url, raw, headers, mid))
    return out


def bare_posts(url: str, target_like: list[Post]) -> list[Post]:
    """The same bodies, to the bare server."""
    return [Post(url, p.body, p.headers, p.mid) for p in target_like]


def stored_once(db_url: str, instance_id: int, acked: list[str]) -> dict[str, int]:
    """How the acknowledged ids sit in the messages table: missing, once, more than once."""
    found = dict(rows(db_url, "SELECT provider_message_id, COUNT(*) FROM messages "
                      "WHERE instance_id=? GROUP BY provider_message_id", instance_id))
    once = sum(1 for m in acked if found.get(m) == 1)
    missing = sum(1 for m in acked if m not in found)
    more = sum(1 for m in acked if found.get(m, 0) > 1)
    return {"acked": len(acked), "stored_once": once, "missing": missing, "duplicated": more,
            "rows": sum(found.values())}


def phases(url: str, reset: bool = False, dump: bool = False) -> dict[str, Any]:
    import httpx

    return dict(httpx.get(f"{url}/_bench/phases", params={"reset": int(reset),
                                                           "dump": int(dump)},
                          timeout=120).json())


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def quiet(pid: int, timeout: float = 60.0) -> float:
    """Wait until the server is idle (under 5% of a core over half a second): the turns a round
    scheduled run after their debounce, and must not fall on the next round, ours or the
    bare endpoint's. Returns the seconds waited."""
    t0 = time.monotonic()
    before = cpu_seconds(pid)
    while time.monotonic() - t0 < timeout:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - before < 0.025:
            break
        before = now
    return time.monotonic() - t0


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


# -- instrumented server (--phases, --cprofile) --------------------------------------------------

def serve_instrumented(port: int, cprofile_out: str) -> None:
    """``atende serve`` with timers around each step of a webhook, and a route that reports
    them (``GET /_bench/phases?reset=1``). Wraps module attributes of this process only."""
    import cProfile
    import functools
    import logging
    import threading

    import uvicorn
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm.session import SessionTransaction
    from sqlalchemy.pool import QueuePool

    import server.routes.webhooks as wh
    from server import queue, runtime, tasks
    from server.app import create_app
    from server.services import contacts, inbound, inbound_batch, instances, intake, journey
    from server.settings import get_settings, use_settings

    lock = threading.Lock()
    stats: dict[str, list[float]] = {}  # name -> [count, wall, thread cpu]
    local = threading.local()
    profiles: list[cProfile.Profile] = []

    def add(name: str, wall: float, cpu: float) -> None:
        with lock:
            s = stats.setdefault(name, [0, 0.0, 0.0])
            s[0] += 1
            s[1] += wall
            s[2] += cpu

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def w(*a: Any, **k: Any) -> Any:
            t, c = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                add(name, time.perf_counter() - t, time.thread_time() - c)
        return w

    def timed_async(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def w(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return await fn(*a, **k)
            finally:
                add(name, time.perf_counter() - t, 0.0)
        return w

    def profiled(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def w(*a: Any, **k: Any) -> Any:
            prof = getattr(local, "prof", None)
            if prof is None:
                prof = local.prof = cProfile.Profile()
                with lock:
                    profiles.append(prof)
            prof.enable()
            try:
                return fn(*a, **k)
            finally:
                prof.disable()
        return w

    class Adapter:
        def __init__(self, mod: Any) -> None:
            self.verify = timed("3 verify (signature)", mod.verify)
            self.parse = timed("4 parse", mod.parse)

    adapters: dict[str, Adapter] = {}
    real_adapter_for = intake.adapter_for

    def adapter_for(provider: str) -> Any:
        if provider not in adapters:
            adapters[provider] = Adapter(real_adapter_for(provider))
        return adapters[provider]

    intake.adapter_for = adapter_for  # type: ignore[assignment]
    wh.read_body = timed_async("2 read body", wh.read_body)
    intake.take = timed_async("5 queued until stored (wait + batch)", intake.take)
    work = timed("6 a batch (writer thread)", intake._Writer.work)
    intake._Writer.work = profiled(work) if cprofile_out else work  # type: ignore[method-assign]
    intake._Writer.alone = timed("7 one by one (new customer...)",  # type: ignore[method-assign]
                                 intake._Writer.alone)
    instances.for_webhook = timed("1 instance lookup", instances.for_webhook)
    inbound_batch.store = timed("6a inbound_batch.store", inbound_batch.store)
    contacts.known_many = timed("6b contacts.known_many (Core)", contacts.known_many)
    inbound.file_of = timed("6c inbound.file_of", inbound.file_of)
    contacts.resolve = timed("7a contacts.resolve", contacts.resolve)
    contacts.conversation_for = timed("7b contacts.conversation_for", contacts.conversation_for)
    journey.append = timed("7c journey.append (Core)", journey.append)
    tasks.after_inbound = timed("8 after_inbound", tasks.after_inbound)
    queue.Task.schedule = timed("8b huey enqueue (Task.schedule)",  # type: ignore[method-assign]
                                queue.Task.schedule)
    QueuePool._do_get = timed("9b pool checkout (any thread)",  # type: ignore[method-assign]
                              QueuePool._do_get)
    SessionTransaction.commit = timed("9 ORM COMMIT incl. flush (new customers)",  # type: ignore[method-assign]
                                      SessionTransaction.commit)

    @event.listens_for(Engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        conn.info["bench_t"] = time.perf_counter()

    @event.listens_for(Engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        add(f"sql {verb}", time.perf_counter() - conn.info.pop("bench_t"), 0.0)

    settings = get_settings()
    settings = use_settings(settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"}))
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings.ensure_dirs()
    runtime.start(settings)
    app = create_app(settings)

    main = cProfile.Profile() if cprofile_out else None

    def dump() -> None:
        """cProfile's figures as files (uvicorn ends the process on SIGTERM itself, so they
        are asked for over HTTP before the server is stopped)."""
        import pstats

        if main is None:
            return
        main.disable()
        folder = Path(cprofile_out)
        folder.mkdir(parents=True, exist_ok=True)
        main.dump_stats(folder / "event-loop.prof")
        with lock:
            for i, p in enumerate(profiles):
                p.dump_stats(folder / f"handler-{i}.prof")
        for name, files in (("event-loop", [folder / "event-loop.prof"]),
                            ("handlers", sorted(folder.glob("handler-*.prof")))):
            with (folder / f"{name}.txt").open("w") as out:
                st: pstats.Stats | None = None
                for f in files:
                    try:
                        one = pstats.Stats(str(f), stream=out)
                    except TypeError:  # a thread that handled nothing since the reset
                        continue
                    st = one if st is None else st.add(one)
                if st is not None:
                    st.sort_stats("cumulative").print_stats(60)
                    st.sort_stats("tottime").print_stats(40)

    async def timing(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/_bench/phases":
            out = {k: {"n": int(v[0]), "wall_s": v[1], "cpu_s": v[2]} for k, v in stats.items()}
            query = scope.get("query_string", b"")
            if b"dump=1" in query:
                dump()
            if b"reset=1" in query:
                with lock:
                    stats.clear()
                    for p in profiles:
                        p.clear()
                if main is not None:
                    main.enable()  # profile from here on
            raw = json.dumps(out).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": raw})
            return
        if scope["type"] == "http" and scope["path"].startswith("/webhooks/"):
            t = time.perf_counter()
            try:
                await app(scope, receive, send)
            finally:
                add("0 request in the app (ASGI)", time.perf_counter() - t, 0.0)
            return
        await app(scope, receive, send)

    uvicorn.run(timing, host="127.0.0.1", port=port, log_level="warning")


# -- the report ----------------------------------------------------------------------------------

def per_webhook(ph: dict[str, Any], n: int) -> list[tuple[str, float, float, float]]:
    """(phase, calls per webhook, wall ms per webhook, cpu ms per webhook), in phase order."""
    out = []
    for name in sorted(ph):
        v = ph[name]
        out.append((name, v["n"] / n, v["wall_s"] * 1000 / n, v["cpu_s"] * 1000 / n))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=3000, help="webhooks per concurrency level")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--customers", type=int, default=500, help="distinct senders")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating rounds of bare and ours per level")
    ap.add_argument("--providers", nargs="+", default=["simulator", "evolution"],
                    choices=["simulator", "evolution"])
    ap.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    ap.add_argument("--phases", action="store_true",
                    help="also run an instrumented server and print the time per step")
    ap.add_argument("--cprofile", type=Path, help="with --phases: write cProfile stats here")
    ap.add_argument("--target", type=float, default=0.5, help="acks/s ratio the issue asks for")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--serve-instrumented", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--cprofile-out", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_bare:
        return serve_bare(args.serve_bare)
    if args.serve_instrumented:
        return serve_instrumented(args.serve_instrumented, args.cprofile_out)

    from rich.console import Console
    from rich.table import Table

    import tests.conftest  # noqa: F401  (sets the tests' ATENDE_SECRET_KEY, to read secrets)

    console = Console(width=170)
    folder = Path(tempfile.mkdtemp(prefix="webhooks-bench-"))
    result: dict[str, Any] = {"machine": {"cores": os.cpu_count(), "load_before": load()},
                              "requests": args.requests, "rounds": args.rounds, "db": args.db,
                              "runs": {}}
    ours: dict[str, dict[int, Run]] = {}
    bare: dict[str, dict[int, Run]] = {}
    checks: dict[str, dict[str, int]] = {}
    chunk = args.requests // args.rounds
    with bare_server(folder) as b:
        for provider in args.providers:
            console.print(f"[bold]{provider}[/] on {args.db} vs the bare endpoint "
                          f"(load {load()})")
            with atende_server(folder, args.db) as a:
                target = simulator_target(a) if provider == "simulator" else evolution_target(a)
                bare_url = f"{b.url}/webhooks/{provider}/{target.instance}"
                try:
                    warm = drive(make_posts(target, args.warmup, args.customers, "warm"), 8)
                    drive(bare_posts(bare_url, make_posts(target, args.warmup, 1, "bw")), 8)
                    acked = list(warm.acked)
                    ours[provider], bare[provider] = {}, {}
                    for c in args.concurrency:
                        mine, theirs = [], []
                        # Alternating rounds, so a change in the machine's other load falls on
                        # both sides alike.
                        for r in range(args.rounds):
                            posts = make_posts(target, chunk, args.customers, f"c{c}r{r}")
                            quiet(a.srv.proc.pid)
                            theirs.append(drive(bare_posts(bare_url, posts), c, b.proc.pid))
                            mine.append(drive(posts, c, a.srv.proc.pid))
                        run, base = merge(mine), merge(theirs)
                        acked += run.acked
                        ours[provider][c], bare[provider][c] = run, base
                        console.print(
                            f"  {c} in flight: {run.acks_per_s:.0f} vs {base.acks_per_s:.0f} "
                            f"acks/s, p50 {run.pct(0.5) * 1000:.0f} vs "
                            f"{base.pct(0.5) * 1000:.0f} ms, p99 {run.pct(0.99) * 1000:.0f} vs "
                            f"{base.pct(0.99) * 1000:.0f} ms, server CPU "
                            f"{run.cpu_ms_per_webhook:.2f} vs {base.cpu_ms_per_webhook:.2f} "
                            f"ms/webhook, statuses {run.statuses} "
                            f"(load {load()})")
                        wrong = sum(run.answers[m].get("stored") != 1 for m in run.acked)
                        if wrong:
                            console.print(f"  [red]{wrong} acks did not say stored=1[/]")
                    checks[provider] = stored_once(a.db_url, target.instance_id, acked)
                    console.print(f"  rows: {checks[provider]}")
                finally:
                    target.stop()

    table = Table(title=f"Webhook intake, {args.db}, {args.requests} webhooks per level, "
                  f"{os.cpu_count()} cores, load before {result['machine']['load_before']}")
    for col in ("provider", "in flight", "acks/s", "bare acks/s", "ratio", "p50 ms",
                "bare p50", "p99 ms", "bare p99", "CPU ms", "bare CPU", "stored once"):
        table.add_column(col, justify="left" if col == "provider" else "right")
    for provider, levels in ours.items():
        ck = checks[provider]
        ok = ck["stored_once"] == ck["acked"] and not ck["duplicated"]
        for c, run in levels.items():
            base = bare[provider][c]
            ratio = run.acks_per_s / base.acks_per_s
            table.add_row(provider, str(c), f"{run.acks_per_s:.0f}", f"{base.acks_per_s:.0f}",
                          f"[{'green' if ratio >= args.target else 'red'}]{ratio:.2f}x[/]",
                          f"{run.pct(0.5) * 1000:.0f}", f"{base.pct(0.5) * 1000:.0f}",
                          f"{run.pct(0.99) * 1000:.0f}", f"{base.pct(0.99) * 1000:.0f}",
                          f"{run.cpu_ms_per_webhook:.2f}", f"{base.cpu_ms_per_webhook:.2f}",
                          f"{ck['stored_once']}/{ck['acked']}" + ("" if ok else " [red]![/]"))
            result["runs"].setdefault(provider, {})[str(c)] = {
                "ours": run.figures(), "bare": base.figures(),
                "ratio_acks": ratio, "rows": ck}
    console.print(table)

    if args.phases:
        provider = args.providers[0]
        c = max(args.concurrency)
        console.print(f"[bold]phases[/]: instrumented server, {provider}, {c} in flight")
        instrument = str(args.cprofile.resolve()) if args.cprofile else "phases"
        with atende_server(folder, args.db, instrument=instrument) as a:
            target = simulator_target(a) if provider == "simulator" else evolution_target(a)
            try:
                drive(make_posts(target, args.warmup, args.customers, "warm"), 8)
                phases(a.srv.url, reset=True)
                run = drive(make_posts(target, args.requests, args.customers, "ph"), c)
                ph = phases(a.srv.url, reset=True, dump=bool(args.cprofile))
            finally:
                target.stop()
        n = len(run.acked)
        pt = Table(title=f"Where a webhook's time goes ({provider}, {c} in flight, {n} acked at "
                   f"{run.acks_per_s:.0f}/s with timers on; wall includes waiting for locks and "
                   "the GIL)")
        for col in ("step", "calls/webhook", "wall ms/webhook", "cpu ms/webhook"):
            pt.add_column(col, justify="left" if col == "step" else "right")
        for name, calls, wall, cpu in per_webhook(ph, n):
            pt.add_row(name, f"{calls:.2f}", f"{wall:.2f}", f"{cpu:.2f}" if cpu else "")
        console.print(pt)
        result["phases"] = {"provider": provider, "concurrency": c, "acked": n,
                            "acks_per_s_instrumented": run.acks_per_s, "p99_ms":
                            run.pct(0.99) * 1000, "steps": ph}
        if args.cprofile:
            console.print(f"cProfile: {args.cprofile}/event-loop.txt, handlers.txt")

    result["machine"]["load_after"] = load()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    shutil.rmtree(folder, ignore_errors=True)  # kept, with the servers' logs, on failure


if __name__ == "__main__":
    main()
