"""The huey instance that runs background work; its backend is configuration, not code."""

from __future__ import annotations

import signal
from typing import Any

from huey import Huey, PostgresHuey, RedisHuey, SqliteHuey

from server.settings import Settings, get_settings


def make_huey(settings: Settings) -> Huey:
    """SQLite in the data folder by default; Redis or PostgreSQL by ``ATENDE_QUEUE_URL``."""
    url = settings.queue_url
    if not url:
        settings.ensure_dirs()
        return SqliteHuey("atende", filename=str(settings.data_dir / "queue.db"))
    if url.startswith(("redis://", "rediss://")):
        return RedisHuey("atende", url=url)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresHuey("atende", dsn=url)
    raise ValueError(f"ATENDE_QUEUE_URL: unsupported queue {url.split(':')[0]!r}; "
                     "use redis:// or postgresql://, or leave it empty for SQLite")


huey = make_huey(get_settings())


def start_consumer(workers: int) -> Any:
    """Run huey's consumer threads inside this process, leaving the server's signal handlers."""
    import server.tasks  # noqa: F401  (registers the task functions with huey)

    consumer = huey.create_consumer(workers=workers, worker_type="thread", flush_locks=True,
                                    check_worker_health=False)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    consumer.start()
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    return consumer
