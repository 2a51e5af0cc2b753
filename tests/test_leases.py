"""Leases on SQLite and PostgreSQL: a dead worker's work is taken over, a live worker's never."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import select

from server.engine import turns
from server.schema import Message
from server.services import inbound, journey, leases, recovery
from tests.test_store import STALE, _msg


def test_a_live_workers_lease_is_never_taken(sessions) -> None:
    with leases.hold(sessions, "conversation-1", ttl=0.6) as how:
        assert how == "new"
        time.sleep(2.0)  # over three lease lengths: only renewal keeps it
        assert leases.acquire(sessions, "conversation-1", 0.6, owner="other") is None
    assert leases.acquire(sessions, "conversation-1", 0.6, owner="other") == "new"


def test_a_dead_workers_lease_lapses_and_is_taken_over(sessions) -> None:
    # A worker killed mid-turn: it took the lease and never renews it again.
    assert leases.acquire(sessions, "conversation-2", 0.5, owner="dead") == "new"
    assert leases.acquire(sessions, "conversation-2", 0.5, owner="alive") is None
    time.sleep(0.7)
    assert leases.acquire(sessions, "conversation-2", 30, owner="alive") == "taken_over"
    assert not leases.renew(sessions, "conversation-2", 30, owner="dead")
    try:
        with leases.hold(sessions, "conversation-2", ttl=30):
            raise AssertionError("taken while its new holder lives")
    except leases.Busy:
        pass


def test_workers_racing_for_a_lapsed_lease_take_it_once(sessions) -> None:
    assert leases.acquire(sessions, "outbox-7", 0.2, owner="dead") == "new"
    time.sleep(0.4)
    got: list[str | None] = []
    start = threading.Barrier(6)

    def race(i: int) -> None:
        start.wait()
        got.append(leases.acquire(sessions, "outbox-7", 30, owner=f"w{i}"))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 6 and sorted(map(str, got)) == ["None"] * 5 + ["taken_over"]


def test_work_a_dead_worker_left_is_found_but_not_a_live_ones(sessions, inst) -> None:
    dead, _ = inbound.store_inbound(sessions, inst, _msg("d1", "5511911110001"),
                                    STALE)
    held, _ = inbound.store_inbound(sessions, inst, _msg("h1", "5511911110002"),
                                    STALE)
    waiting, _ = inbound.store_inbound(sessions, inst, _msg("w1", "5511911110003"),
                                       STALE)
    turns.claim(sessions, dead)
    turns.claim(sessions, held)
    # Both were taken by a worker; the one on `held` is still alive.
    leases.acquire(sessions, f"conversation-{held}", 30, owner="alive")
    # The cut-off turn is overdue at once, a waiting message once it waited too long, and the
    # live worker's turn never.
    assert recovery.overdue(sessions, after=timedelta(hours=1)) == ([dead], [])
    assert recovery.overdue(sessions, after=timedelta(0)) == (sorted([dead, waiting]), [])
    # Its next holder puts the cut-off message back in line, with the reason in its journey.
    assert turns.requeue_cut(sessions, dead) == 1
    with sessions() as s:
        msg = s.scalars(select(Message).where(Message.provider_message_id == "d1")).one()
        assert msg.status == "pending"
        assert [e.event for e in journey.of(s, msg.id)][-1] == "requeued"
