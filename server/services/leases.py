"""Leases: one worker at a time on a piece of work, and a dead worker's work taken over.

A lease is a row (name, owner, expires_at). Its holder renews it every third of its length
while alive; a worker killed mid-turn stops renewing, so its lease lapses and the next worker
takes the work over. A live worker's lease is never taken: it keeps moving ``expires_at``.
Huey's own task locks have no expiry: a lock left by a process killed with SIGKILL stayed in the
queue's store for good, and the conversation was never answered again.

The clock is the workers' own (UTC); hosts sharing a database need clocks within a fraction of
``ATENDE_LEASE_SECONDS`` of each other, which NTP gives.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from server.schema import Lease, utcnow

log = logging.getLogger(__name__)
# This process, as lease rows name it: host and pid for people, a random tail so a reused pid
# (a restarted container) is never mistaken for the process that held the lease before.
OWNER = f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(4)}"


class Busy(RuntimeError):
    """Another live worker holds the lease; try again shortly."""


def acquire(sessions: sessionmaker[Session], name: str, ttl: float,
            owner: str = OWNER) -> str | None:
    """Take the lease: ``"new"``, ``"taken_over"`` (its holder let it lapse), or None (held)."""
    now = utcnow()
    until = now + timedelta(seconds=ttl)
    with sessions.begin() as s:
        # One statement decides a takeover: two workers racing for a lapsed lease cannot both
        # match, as the first one's update moves expires_at past now.
        lapsed = s.execute(update(Lease).where(Lease.name == name, Lease.expires_at < now)
                           .values(owner=owner, expires_at=until))
        if lapsed.rowcount:  # type: ignore[attr-defined]
            return "taken_over"
    try:
        with sessions.begin() as s:
            s.add(Lease(name=name, owner=owner, expires_at=until))
    except IntegrityError:
        return None
    return "new"


def renew(sessions: sessionmaker[Session], name: str, ttl: float, owner: str = OWNER) -> bool:
    """Move the lease's end ``ttl`` seconds on; False if it is no longer ours."""
    with sessions.begin() as s:
        done = s.execute(update(Lease).where(Lease.name == name, Lease.owner == owner)
                         .values(expires_at=utcnow() + timedelta(seconds=ttl)))
        return bool(done.rowcount)  # type: ignore[attr-defined]


def release(sessions: sessionmaker[Session], name: str, owner: str = OWNER) -> None:
    with sessions.begin() as s:
        s.execute(delete(Lease).where(Lease.name == name, Lease.owner == owner))


def live(s: Session, names: list[str]) -> set[str]:
    """Which of these leases are held now."""
    if not names:
        return set()
    return set(s.scalars(select(Lease.name).where(Lease.name.in_(names),
                                                  Lease.expires_at >= utcnow())))


def clear_all(sessions: sessionmaker[Session]) -> int:
    """Drop every lease: only for a process that knows it is the only worker (the embedded
    defaults, whose data folder it holds locked), so that a restart redoes a cut-off turn at
    once instead of after the dead process's lease lapses."""
    with sessions.begin() as s:
        return s.execute(delete(Lease)).rowcount  # type: ignore[attr-defined]


@contextmanager
def hold(sessions: sessionmaker[Session], name: str, ttl: float) -> Iterator[str]:
    """Hold the lease for the block, renewing it meanwhile; Busy if a live worker has it.

    Yields how it was taken (``"new"`` or ``"taken_over"``).
    """
    how = acquire(sessions, name, ttl)
    if how is None:
        raise Busy(f"{name} is held by another worker")
    stop = threading.Event()
    keeper = threading.Thread(target=_keep, args=(sessions, name, ttl, stop), daemon=True,
                              name=f"lease-{name}")
    keeper.start()
    try:
        yield how
    finally:
        stop.set()
        keeper.join()
        release(sessions, name)


def _keep(sessions: sessionmaker[Session], name: str, ttl: float, stop: threading.Event) -> None:
    while not stop.wait(ttl / 3):
        try:
            if not renew(sessions, name, ttl):
                # Only a lapse lets another worker in; what we write next is still guarded by
                # unique keys (one reply per message), so this is a warning, not a duplicate.
                log.warning("lease %s lapsed and was taken over", name)
                return
        except SQLAlchemyError as exc:  # the database is briefly away: try at the next beat
            log.warning("could not renew lease %s: %s", name, exc)
