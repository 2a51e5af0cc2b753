"""The task queue (huey), built on first use, not at import; its backend is configuration.

Task functions are declared with ``task`` and ``periodic`` (server/tasks.py) and registered
with huey when the queue is first built, so importing a module that enqueues work opens no
queue file and reads no settings. huey names each task by its module and function, as before:
work queued by an earlier version still runs.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

from huey import Huey, PostgresHuey, RedisHuey, SqliteHuey
from huey.api import TaskWrapper

from server.settings import Settings, get_settings

_declared: list[tuple[Callable[..., Any], dict[str, Any], Any]] = []  # (fn, options, crontab)
_wrappers: dict[Callable[..., Any], TaskWrapper] = {}
_huey: Huey | None = None
_build = threading.Lock()


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


def huey() -> Huey:
    """The process's queue, built from the settings on first use, every task registered."""
    global _huey
    with _build:
        if _huey is None:
            import server.tasks  # noqa: F401  (declares the task functions)

            q = make_huey(get_settings())
            for fn, options, cron in _declared:
                deco = q.periodic_task(cron, **options) if cron is not None else q.task(**options)
                _wrappers[fn] = deco(fn)
            _huey = q
        return _huey


class Task:
    """A declared task: calling it enqueues it, ``schedule`` enqueues it for later."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    @property
    def wrapper(self) -> TaskWrapper:
        huey()
        return _wrappers[self.fn]

    def __call__(self, *args: Any) -> Any:
        return self.wrapper(*args)

    def schedule(self, args: tuple[Any, ...], delay: float) -> Any:
        return self.wrapper.schedule(args=args, delay=delay)


def task(**options: Any) -> Callable[[Callable[..., Any]], Task]:
    """Declare a task function (options as huey's ``task``: retries, retry_delay...)."""
    def declare(fn: Callable[..., Any]) -> Task:
        _declared.append((fn, options, None))
        return Task(fn)
    return declare


def periodic(cron: Any, **options: Any) -> Callable[[Callable[..., Any]], Task]:
    """Declare a periodic task (``cron``: a huey ``crontab``)."""
    def declare(fn: Callable[..., Any]) -> Task:
        _declared.append((fn, options, cron))
        return Task(fn)
    return declare


def start_consumer(workers: int) -> Any:
    """Run huey's consumer threads inside this process, leaving the server's signal handlers."""
    consumer = huey().create_consumer(workers=workers, worker_type="thread",
                                      check_worker_health=False)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    consumer.start()
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    return consumer
