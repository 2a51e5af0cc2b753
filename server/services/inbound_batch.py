"""Known customers' messages of many webhooks, stored in one transaction.

The common webhook is a text from a customer already known on the number. Stored one by one,
each cost a transaction of four statements, and on SQLite each statement also gave up the GIL
and waited to get it back from the event loop: 1.8 ms of CPU a webhook against 0.3 for a bare
endpoint. Here the messages of every webhook waiting are written together: one SELECT per
message for its conversation, then one multi-row INSERT each for the messages and their journey
steps, one UPDATE of the conversations, one commit (``server.services.intake`` batches them).

The rules are ``inbound``'s own (``inbound.plan``), and duplicates are still decided by the
unique key (instance, provider id): the INSERT skips a row the key refuses (ON CONFLICT DO
NOTHING) and the copy gets a ``duplicate`` step on the message already stored, as one by one.
A webhook with anything else in it (a new customer, a status, a message from the phone, a
group) is left for ``inbound.handle``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway_bridge import Event, InboundMessage
from server.schema import Conversation, Message
from server.services import contacts, inbound, journey

_M = Message.__table__.c


@dataclass
class Webhook:
    """One checked webhook: its number and events; ``outcome`` once stored here."""

    instance: inbound.Receiving
    events: list[Event]
    rules: inbound.Rules
    outcome: inbound.Outcome | None = None


@dataclass
class _Message:
    hook: Webhook
    ev: InboundMessage
    conv: contacts.Known
    planned: inbound.Planned


def simple(hook: Webhook) -> bool:
    """Only customers' messages (no status, no echo, no group left unanswered): the batch's."""
    return bool(hook.events) and all(
        isinstance(ev, InboundMessage) and not ev.from_me
        and not (ev.is_group and not hook.rules.answer_groups) for ev in hook.events)


def store(c: Connection, hooks: Sequence[Webhook]) -> None:
    """Store the messages of ``hooks`` whose customers are all known, in one transaction on
    ``c`` (not in one); each stored webhook gets its ``outcome``, the others keep None."""
    with c.begin():
        planned = _read(c, hooks)
        if not planned:
            return
        ids = _insert(c, planned)
        steps: list[dict[str, Any]] = []
        stored: dict[tuple[int, str], _Message] = {}
        for m in planned:
            out = m.hook.outcome
            assert out is not None
            key = (m.hook.instance.id, m.ev.provider_message_id)
            msg_id = ids.get(key)
            if msg_id is None or key in stored:  # already stored, or twice in this batch
                first = msg_id if msg_id is not None else _stored(c, key)
                steps += journey.rows(first, [("duplicate", {"detail": "delivered again"})])
                out.duplicates += 1
                continue
            stored[key] = m
            steps += journey.rows(msg_id, m.planned.steps)
            out.stored += 1
            file = m.planned.row["media"]
            if file is not None and file["state"] == "waiting":
                out.fetch.append(msg_id)
            if inbound.needs_turn(m.ev, m.planned.status) and m.conv.id not in out.turns:
                out.turns.append(m.conv.id)
        journey.insert_rows(c, steps)
        _touch(c, list(stored.values()))


def _read(c: Connection, hooks: Sequence[Webhook]) -> list[_Message]:
    """Each message planned against its conversation, for the webhooks all of whose customers
    are known (the others are left to ``inbound.handle``, which creates them). The customers
    are read in one statement per number."""
    convs: dict[tuple[int, int], contacts.Known | None] = {}
    by_number: dict[int, list[tuple[tuple[int, int], InboundMessage]]] = {}
    for h, hook in enumerate(hooks):
        for e, ev in enumerate(hook.events):
            assert isinstance(ev, InboundMessage)
            by_number.setdefault(hook.instance.id, []).append(((h, e), ev))
    for number, items in by_number.items():
        found = contacts.known_many(c, number, [(ev.phone, ev.lid, ev.sender) for _, ev in items])
        convs.update((at, conv) for (at, _), conv in zip(items, found, strict=True))
    planned: list[_Message] = []
    for h, hook in enumerate(hooks):
        mine = [(ev, convs[h, e]) for e, ev in enumerate(hook.events)]
        if any(conv is None for _, conv in mine):
            continue
        hook.outcome = inbound.Outcome()
        for ev, conv in mine:
            assert isinstance(ev, InboundMessage) and conv is not None
            file, reason = inbound.file_of(ev, hook.rules)
            planned.append(_Message(hook, ev, conv, inbound.plan(
                hook.instance, conv, ev, inbound.first_status(ev, hook.rules), file, reason,
                None, hook.rules)))
    return planned


def _insert(c: Connection, planned: list[_Message]) -> dict[tuple[int, str], int]:
    """The messages in one statement; the ids of those the unique key let in."""
    dialect = postgresql if c.dialect.name == "postgresql" else sqlite
    stmt = (dialect.insert(Message).on_conflict_do_nothing(
        index_elements=["instance_id", "provider_message_id"])
        .returning(_M.id, _M.instance_id, _M.provider_message_id))
    rows = c.execute(stmt, [m.planned.row for m in planned]).all()
    return {(r.instance_id, r.provider_message_id): r.id for r in rows}


def _stored(c: Connection, key: tuple[int, str]) -> int:
    """The message already stored under this key (a retried delivery's)."""
    return c.execute(select(_M.id).where(_M.instance_id == key[0],
                                         _M.provider_message_id == key[1])).scalar_one()


_TOUCH = (update(Conversation).where(Conversation.id == bindparam("conv"))
          .values(address=bindparam("address"), last_inbound_at=bindparam("last")))


def _touch(c: Connection, stored: list[_Message]) -> None:
    """Each conversation once: where the customer last wrote from, and its newest message."""
    first: dict[int, contacts.Known] = {}
    now: dict[int, dict[str, Any]] = {}
    for m in stored:
        conv = first.setdefault(m.conv.id, m.conv)
        last: datetime | None = now.get(conv.id, {}).get("last", conv.last_inbound_at)
        now[conv.id] = {"conv": conv.id, "address": m.ev.sender,
                        "last": m.ev.timestamp if last is None or last < m.ev.timestamp
                        else last}
    changed = [v for k, v in now.items()
               if (v["address"], v["last"]) != (first[k].address, first[k].last_inbound_at)]
    if changed:
        c.execute(_TOUCH, changed)
