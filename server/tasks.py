"""Background tasks: the same functions run in-process on SQLite or on workers at scale.

Each unit of work runs under a lease (server.services.leases): one worker at a time on a
conversation's turn or on one send, and a worker that dies leaves work the next one takes over
once its lease lapses, instead of a lock that stays forever.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from huey import crontab
from sqlalchemy.orm import Session, sessionmaker

from server import runtime
from server.db import sessions_for
from server.engine import turns
from server.queue import Task, periodic, task
from server.services import (
    chat_sessions,
    connection,
    inbound,
    leases,
    media,
    outbox,
    reconcile,
    recovery,
    schedules,
    statuses,
)
from server.settings import Settings

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
    _schedule_timer(sessions, conversation_id)


def _schedule_timer(sessions: sessionmaker[Session], conversation_id: int) -> None:
    """A flow that waits (a wait node) is stepped again when its timer is due."""
    due = turns.timer_due(sessions, conversation_id)
    if due is not None:
        flow_timer.schedule(args=(conversation_id, due[0]), delay=due[1])


@task(retries=120, retry_delay=1)
def flow_timer(conversation_id: int, token: str) -> None:
    rt, sessions = runtime.current(), _sessions()
    try:
        with leases.hold(sessions, f"conversation-{conversation_id}", rt.settings.lease_seconds):
            box = turns.timer(rt, sessions, conversation_id, token)
    except leases.Busy:
        flow_timer.schedule(args=(conversation_id, token), delay=BUSY_RETRY)
        return
    if box is not None:
        deliver(box)
    _schedule_timer(sessions, conversation_id)


@task(retries=8, retry_delay=2)
def deliver(outbox_id: int) -> None:
    rt, sessions = runtime.current(), _sessions()
    try:
        with leases.hold(sessions, f"outbox-{outbox_id}", rt.settings.lease_seconds):
            outbox.deliver(rt.http, sessions, outbox_id,
                           max_attempts=rt.settings.send_max_attempts,
                           data_dir=rt.settings.data_dir)
    except leases.Busy:  # another worker is sending it; if it dies, its lease lapses
        deliver.schedule(args=(outbox_id,), delay=BUSY_RETRY)
    except (outbox.Waiting, outbox.RetryLater) as exc:
        # The outbox row counts the tries and says when to look again.
        deliver.schedule(args=(outbox_id,), delay=exc.after)
    else:  # the next reply of the conversation (a long reply's next part) need not wait
        following = outbox.next_in_line(sessions, outbox_id)
        if following is not None:
            deliver(following)


@task(retries=5, retry_delay=15)
def fetch_media(message_id: int) -> None:
    """Download an inbound message's file; huey retries while the gateway may answer later."""
    rt = runtime.current()
    media.fetch(rt.http, _sessions(), rt.settings.data_dir, message_id,
                max_bytes=rt.settings.media_max_bytes)


def rules(settings: Settings) -> inbound.Rules:
    """The inbound rules as configured."""
    return inbound.Rules(stale_after=timedelta(seconds=settings.stale_after_seconds),
                         data_dir=settings.data_dir, media_max_bytes=settings.media_max_bytes,
                         answer_groups=settings.answer_groups,
                         answer_while_queued=settings.answer_while_queued)


def after_inbound(settings: Settings, turns_: list[int], fetch: list[int]) -> None:
    """Schedule what stored messages need: a turn (after the burst window), their files."""
    for conv_id in turns_:
        run_turn.schedule(args=(conv_id,), delay=settings.turn_debounce_seconds)
    for msg_id in fetch:
        fetch_media(msg_id)


@task()
def check_connections() -> None:
    """Ask every gateway whether its number is linked (server.services.connection)."""
    rt, sessions = runtime.current(), _sessions()
    try:
        with leases.hold(sessions, "connection-check", rt.settings.lease_seconds):
            connection.check_all(rt.http, sessions)
    except leases.Busy:
        pass  # another worker is checking right now


@task()
def reconcile_chats() -> None:
    """Store messages Evolution and WAHA never posted (server.services.reconcile)."""
    rt, sessions = runtime.current(), _sessions()
    try:
        with leases.hold(sessions, "reconcile", rt.settings.lease_seconds):
            found = reconcile.run(rt.http, sessions, rules(rt.settings),
                                  active_for=timedelta(hours=rt.settings.reconcile_hours))
    except leases.Busy:
        return
    after_inbound(rt.settings, found.turns, found.fetch)


def spread(fn: Task, every: float, minute: int) -> None:
    """Run ``fn`` every ``every`` seconds over the coming minute (huey's periodic tasks tick
    once a minute); every few minutes when ``every`` is longer than one."""
    if every >= 60:
        if minute % max(1, round(every / 60)) == 0:
            fn()
        return
    for k in range(max(1, int(60 // every))):
        fn.schedule(args=(), delay=k * every)


@periodic(crontab(minute="*"))
def watch_gateways() -> None:
    """Connection checks (a dead socket seen within ATENDE_GATEWAY_CHECK_SECONDS) and
    reconciliation, at their configured paces."""
    settings, minute = runtime.current().settings, datetime.now(UTC).minute
    spread(check_connections, settings.gateway_check_seconds, minute)
    spread(reconcile_chats, settings.reconcile_seconds, minute)


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
    for msg_id in recovery.unfetched(_sessions(), older_than=OVERDUE):
        fetch_media(msg_id)
    if convs or boxes:
        log.warning("requeued overdue work: %d conversations, %d replies", len(convs), len(boxes))


@periodic(crontab(minute="*"))
def sweep_sessions() -> None:
    """Close sessions a bot holds that went idle, and fire wait timers whose task was lost."""
    settings, sessions = runtime.current().settings, _sessions()
    with sessions.begin() as s:
        closed = chat_sessions.close_idle(s, settings, datetime.now(UTC))
        late = chat_sessions.timers_due(s, datetime.now(UTC) - timedelta(minutes=1))
    for conv_id, token in late:
        flow_timer(conv_id, token)
    if closed:
        log.info("closed %d idle sessions", closed)


@periodic(crontab(minute="*"))
def send_scheduled() -> None:
    """Queue each scheduled message due within the next minute at its second (one late or
    queued twice is harmless: ``schedules.send`` sends an occurrence once)."""
    now = datetime.now(UTC)
    for schedule_id, at in schedules.due(_sessions(), now + timedelta(minutes=1)):
        queue_schedule(schedule_id, at, now)


def queue_schedule(schedule_id: int, at: datetime, now: datetime) -> None:
    delay = (at - now).total_seconds()
    if delay > 0:
        send_schedule.schedule(args=(schedule_id,), delay=delay)
    else:
        send_schedule(schedule_id)


@task(retries=8, retry_delay=2)
def send_schedule(schedule_id: int) -> None:
    box = schedules.send(_sessions(), schedule_id, datetime.now(UTC))
    if box is not None:
        deliver(box)


@periodic(crontab(minute="17"))
def purge_early_statuses() -> None:
    days = runtime.current().settings.early_status_days
    gone = statuses.purge(_sessions(), timedelta(days=days))
    if gone:
        log.info("purged %d delivery statuses older than %d days that no send claimed", gone, days)
