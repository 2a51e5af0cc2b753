"""Background tasks: the same functions run in-process on SQLite or on workers at scale."""

from __future__ import annotations

import logging
from datetime import timedelta

from huey import crontab
from sqlalchemy.orm import Session, sessionmaker

from server import runtime
from server.db import sessions_for
from server.queue import huey
from server.services import outbox, statuses, turns

log = logging.getLogger(__name__)


def _sessions() -> sessionmaker[Session]:
    return sessions_for(runtime.current().settings.sqlalchemy_url)


# A conversation's lock makes its turns run one at a time, in order; a task that finds it taken
# is retried shortly (huey re-raises TaskLockedException as a retryable error).
@huey.task(retries=120, retry_delay=1)
def run_turn(conversation_id: int) -> None:
    with huey.lock_task(f"conversation-{conversation_id}"):
        box = turns.run(runtime.current(), _sessions(), conversation_id)
    if box is not None:
        deliver(box)


@huey.task(retries=8, retry_delay=2)
def deliver(outbox_id: int) -> None:
    rt = runtime.current()
    try:
        outbox.deliver(rt.http, _sessions(), outbox_id, max_attempts=rt.settings.send_max_attempts)
    except (outbox.Waiting, outbox.RetryLater) as exc:
        # The outbox row counts the tries and says when to look again; the task's own retries
        # are for errors nobody expected.
        deliver.schedule(args=(outbox_id,), delay=exc.after)


@huey.periodic_task(crontab(minute="17"))
def purge_early_statuses() -> None:
    days = runtime.current().settings.early_status_days
    gone = statuses.purge(_sessions(), timedelta(days=days))
    if gone:
        log.info("purged %d delivery statuses older than %d days that no send claimed", gone, days)
