"""Webhooks checked and stored by one writer thread per database, in batches: a group commit.

The event loop only reads a webhook's body and queues it; the writer takes every webhook
waiting, checks each (its number, signature and body), stores the known customers' messages of
all of them in one transaction (``inbound_batch``), then the rest one by one
(``inbound.handle``: new customers, statuses, messages from the phone), and answers them all at
once. A webhook is acknowledged only once what it carried is committed, as before; what changes
is that 16 webhooks cost one transaction instead of 16, and one thread hand-off instead of one
per statement.

Why one thread: SQLite writes one transaction at a time anyway, and each thread more only made
the GIL change hands on every statement (the event loop waited for it to write an answer). A
PostgreSQL batch is a few round trips whatever its size. Messages of one customer are stored
in the order they arrived.

If a batch's transaction fails, each of its webhooks is then handled alone, so one bad delivery
cannot fail the others; nothing of the failed batch was written, so none is stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from gateway_bridge import (
    Adapter,
    AuthError,
    Event,
    Ignored,
    InboundMessage,
    InstanceConfig,
    PayloadError,
    adapter_for,
)
from server.db import engine_of
from server.services import inbound, inbound_batch, instances
from server.settings import Settings

log = logging.getLogger(__name__)
BATCH = 64  # webhooks in one transaction at most: a larger one only delays the first answer
IDLE_SECONDS = 30.0  # a writer with nothing to do for this long ends (a new one starts)


class Refused(Exception):
    """The webhook is not taken: ``status`` is the HTTP answer (401, 400, 404)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass
class Delivery:
    """One webhook as received, and where its answer goes."""

    provider: str
    name: str
    body: bytes
    headers: Mapping[str, str]
    query: Mapping[str, str]
    settings: Settings
    loop: asyncio.AbstractEventLoop
    answer: asyncio.Future[inbound.Outcome]
    result: inbound.Outcome | BaseException | None = field(default=None)


async def take(sessions: sessionmaker[Session], settings: Settings, provider: str, name: str,
               body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
               ) -> inbound.Outcome:
    """Queue a webhook for the database's writer; its outcome once stored, or ``Refused``."""
    loop = asyncio.get_running_loop()
    d = Delivery(provider, name, body, headers, query, settings, loop, loop.create_future())
    _submit(sessions, d)
    return await d.answer


class _Writer:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.waiting: queue.SimpleQueue[Delivery] = queue.SimpleQueue()

    def run(self) -> None:
        while True:
            try:
                batch = [self.waiting.get(timeout=IDLE_SECONDS)]
            except queue.Empty:
                if _retire(self):
                    return
                continue
            while len(batch) < BATCH:
                try:
                    batch.append(self.waiting.get_nowait())
                except queue.Empty:
                    break
            try:
                self.work(batch)
            except BaseException as exc:  # noqa: BLE001 - every waiting webhook gets an answer
                log.exception("webhook batch failed")
                for d in batch:
                    d.result = d.result or exc
            _answer(batch)

    def work(self, batch: list[Delivery]) -> None:
        with engine_of(self.sessions).connect() as c:
            with c.begin():  # each number read once a batch, afresh for every batch
                numbers = {n: instances.for_webhook(c, n) for n in {d.name for d in batch}}
            hooks: dict[int, inbound_batch.Webhook] = {}
            for i, d in enumerate(batch):
                try:
                    hooks[i] = _checked(d, numbers[d.name])
                except Refused as exc:
                    d.result = exc
                except Exception as exc:  # noqa: BLE001 - this webhook's 500, not the batch's
                    log.exception("webhook for %s could not be checked", d.name)
                    d.result = exc
            fast = [h for h in hooks.values() if inbound_batch.simple(h)]
            if fast:
                try:
                    inbound_batch.store(c, fast)
                except Exception:  # noqa: BLE001 - rolled back: each is handled alone below
                    log.exception("a batch of %d webhooks failed; handling each alone",
                                  len(fast))
                    for h in fast:
                        h.outcome = None
            for i, h in hooks.items():
                batch[i].result = h.outcome or self.alone(c, batch[i], h)
        inbound.revokes_kept(self.sessions, [  # those stored by the batch (alone: by handle)
            (h.instance.id, ev.provider_message_id) for h in fast if h.outcome is not None
            for ev in h.events if isinstance(ev, InboundMessage) and not ev.from_me])
        turns = [t for d in batch if isinstance(d.result, inbound.Outcome) for t in d.result.turns]
        fetch = [m for d in batch if isinstance(d.result, inbound.Outcome) for m in d.result.fetch]
        if turns or fetch:
            from server.tasks import after_inbound  # the task queue needs what imports us

            after_inbound(batch[0].settings, list(dict.fromkeys(turns)), fetch)

    def alone(self, c: Connection, d: Delivery, hook: inbound_batch.Webhook
              ) -> inbound.Outcome | BaseException:
        """A webhook the batch did not store, the way one is stored by itself."""
        try:
            return inbound.handle(self.sessions, hook.instance, hook.events, hook.rules,
                                  body=d.body, conn=c)
        except Exception as exc:  # noqa: BLE001 - the gateway gets a 500 and delivers it again
            log.exception("webhook for %s failed", d.name)
            return exc


def _checked(d: Delivery, inst: instances.Number | None) -> inbound_batch.Webhook:
    """The number (404), the signature (401) and the events (400) of one webhook."""
    if inst is None or inst.provider != d.provider:
        raise Refused(404, f"unknown instance {d.name!r} for provider {d.provider!r}")
    cfg = instances.config(inst)
    adapter = adapter_for(d.provider)
    try:
        adapter.verify(d.body, d.headers, d.query, cfg)
        events = _parsed(adapter, d, cfg)
    except AuthError as exc:
        log.warning("webhook for %s refused: %s", d.name, exc)
        raise Refused(401, str(exc)) from None
    except PayloadError as exc:
        raise Refused(400, f"malformed webhook: {exc}") from None
    from server.tasks import rules  # the task queue needs what imports us

    return inbound_batch.Webhook(inst, events, rules(d.settings))


def _parsed(adapter: Adapter, d: Delivery, cfg: InstanceConfig) -> list[Event]:
    """The events of a verified body. An adapter's bug on it (a shape it should have taken as
    unknown) keeps the body in the unsupported store for a person to read, as an unknown
    shape's is, rather than a 500 the gateway would resend for ever."""
    try:
        return adapter.parse(d.body, cfg)
    except (AuthError, PayloadError):
        raise
    except Exception as exc:  # noqa: BLE001 - see above; the log has the adapter's traceback
        log.exception("the %s adapter could not read a webhook for %s", d.provider, d.name)
        return [Ignored(f"the adapter could not read it ({type(exc).__name__})", unknown=True)]


def _answer(batch: list[Delivery]) -> None:
    """Every answer of the batch in one wake-up of each event loop."""
    loops: dict[asyncio.AbstractEventLoop, list[Delivery]] = {}
    for d in batch:
        loops.setdefault(d.loop, []).append(d)
    for loop, ds in loops.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_settle, ds)


def _settle(ds: list[Delivery]) -> None:
    for d in ds:
        if d.answer.done():  # the client went away
            continue
        if isinstance(d.result, inbound.Outcome):
            d.answer.set_result(d.result)
        else:
            d.answer.set_exception(d.result or RuntimeError("webhook not handled"))


_lock = threading.Lock()
_writers: dict[int, _Writer] = {}


def _submit(sessions: sessionmaker[Session], d: Delivery) -> None:
    """Queue ``d`` for this database's writer, started on first use. Under the lock, so an
    idle writer cannot end between being found and being given the webhook."""
    with _lock:
        w = _writers.get(id(sessions))
        if w is None or w.sessions is not sessions:
            w = _writers[id(sessions)] = _Writer(sessions)
            threading.Thread(target=w.run, name="webhook-writer", daemon=True).start()
        w.waiting.put(d)


def _retire(w: _Writer) -> bool:
    """End an idle writer, unless a webhook came meanwhile (the next one starts another)."""
    with _lock:
        if not w.waiting.empty():
            return False
        for key, known in list(_writers.items()):
            if known is w:
                del _writers[key]
        return True
