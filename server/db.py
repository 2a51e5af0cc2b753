"""Database engine, sessions and migrations (Alembic), for SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def finite(value: Any) -> Any:
    """The value with every NaN or infinite float as None: JSON has no NaN, and PostgreSQL
    refuses it (a metric over no cases, as out-of-scope on an eval set that has none, is NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """Standard JSON (``finite``), as every JSON column and published file is written."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets WAL, a busy timeout and foreign keys so threads can share it."""
    # As many connections as the server's thread pool (40) may ask for at once: a webhook
    # waiting for a pooled connection waits for nothing the database does.
    pool = {"pool_size": 20, "max_overflow": 30}
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, json_serializer=dumps, **pool)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                           json_serializer=dumps, **pool)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    _one_writer(engine)
    return engine


WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _one_writer(engine: Engine) -> None:
    """Threads of this process take SQLite's single write lock in turn, through a Python lock.

    SQLite lets one transaction write at a time; a thread that finds the lock taken sleeps in
    SQLite's busy handler (1, 2, 5 ... up to 100 ms between looks), so under 30 webhooks at once
    a write waited 400 ms for locks mostly free. This lock is taken where SQLite's is (at a
    transaction's first write, as pysqlite begins it) and given back at its end, and a waiter
    wakes as soon as it is free. Other processes still meet SQLite's own lock.
    """
    lock = threading.Lock()

    @event.listens_for(engine, "before_cursor_execute")
    def _take(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        info = conn.connection.info  # the DBAPI connection's: one writer per connection
        if not info.get("writing") and statement.lstrip()[:7].upper().startswith(WRITES):
            if not lock.acquire(timeout=30):  # as PRAGMA busy_timeout
                raise TimeoutError("the database stayed locked for 30 s")
            info["writing"] = True

    def _give(conn: Any, *_args: Any) -> None:
        info = conn.connection.info
        if info.pop("writing", False):
            lock.release()

    event.listen(engine, "commit", _give)
    event.listen(engine, "rollback", _give)

    # The current signature (with ``reset_state``): the old one is wrapped by SQLAlchemy in a
    # shim that emits a deprecation warning on every check-in, a cost paid per webhook.
    @event.listens_for(engine.pool, "reset")
    def _reset(dbapi_conn: Any, record: Any, reset_state: Any) -> None:  # returned mid-transaction
        if record.info.pop("writing", False):
            lock.release()


def engine_of(sessions: sessionmaker[Session]) -> Engine:
    """The engine a session factory is bound to: the webhook path runs Core statements on a
    connection of it, where an ORM session would cost more CPU than the statements."""
    return cast(Engine, sessions.kw["bind"])


@lru_cache
def sessions_for(url: str) -> sessionmaker[Session]:
    """One session factory per database URL, shared by the process."""
    return sessionmaker(make_engine(url), expire_on_commit=False)


@contextmanager
def transaction(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with sessions_for(url).begin() as session:
        yield session


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at the bundled migrations and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the database schema up to the latest migration."""
    command.upgrade(alembic_config(url), "head")
