"""Background tasks: the same functions run in-process on SQLite or on workers at scale.

Each unit of work runs under a lease (server.services.leases): one worker at a time on a
conversation's turn or on one send, and a worker that dies leaves work the next one takes over
once its lease lapses, instead of a lock that stays forever.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from huey import crontab
from sqlalchemy.orm import Session, sessionmaker

from server import runtime
from server.db import sessions_for
from server.engine import turns
from server.queue import periodic, task
from server.services import leases, outbox, recovery, statuses

log = logging.getLogger(__name__)
BUSY_RETRY = 1.0  # seconds before a task whose work another live worker holds looks again
OVERDUE = timedelta(minutes=2)  # unfinished work untouched this long lost its task


def _sessions() -> sessionmaker[Session]:
    return sessions_for(runtime.current().settings.sqlalchemy_url)


# Turns of one conversation run one at a time, in order: a task that finds the conversation's
# lease held looks again shortly. The task's own retries are for errors nobody expected.
@task(retries=120, retry_delay=1)
def run_turn(conversation_id: int) -> None:
    rt, sessions = runtime.current(), _sessions()
    try:
        with leases.hold(sessions, f"conversation-{conversation_id}", rt.settings.lease_seconds):
            box = turns.run(rt, sessions, conversation_id)
    except leases.Busy:
        run_turn.schedule(args=(conversation_id,), delay=BUSY_RETRY)
        return
    if box is not None:
        deliver(box)


@task(retries=8, retry_delay=2)
def deliver(outbox_id: int) -> None:
    rt, sessions = runtime.current(), _sessions()
    try:
        with leases.hold(sessions, f"outbox-{outbox_id}", rt.settings.lease_seconds):
            outbox.deliver(rt.http, sessions, outbox_id,
                           max_attempts=rt.settings.send_max_attempts)
    except leases.Busy:  # another worker is sending it; if it dies, its lease lapses
        deliver.schedule(args=(outbox_id,), delay=BUSY_RETRY)
    except (outbox.Waiting, outbox.RetryLater) as exc:
        # The outbox row counts the tries and says when to look again.
        deliver.schedule(args=(outbox_id,), delay=exc.after)


def requeue(convs: list[int], boxes: list[int]) -> None:
    for conv_id in convs:
        run_turn(conv_id)
    for box in boxes:
        deliver(box)


@periodic(crontab(minute="*"))
def sweep_overdue() -> None:
    """Requeue unfinished work whose task was lost with a worker (see services/recovery.py)."""
    convs, boxes = recovery.overdue(_sessions(), after=OVERDUE)
    requeue(convs, boxes)
    if convs or boxes:
        log.warning("requeued overdue work: %d conversations, %d replies", len(convs), len(boxes))


@periodic(crontab(minute="17"))
def purge_early_statuses() -> None:
    days = runtime.current().settings.early_status_days
    gone = statuses.purge(_sessions(), timedelta(days=days))
    if gone:
        log.info("purged %d delivery statuses older than %d days that no send claimed", gone, days)
