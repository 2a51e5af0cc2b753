"""Webhook events into the database: each message stored once, each status applied once.

Every adapter's events come here, so the rules hold for every gateway alike:
- a message is unique on (instance, provider id): a retried or concurrent delivery stores one;
- a message older than the stale window, or the gateway's history after a reconnect (Baileys'
  ``append``), is stored and left for a human, never auto-answered;
- our own sends echoed back (``from_me``) are matched to the outbox, never stored twice; a
  ``from_me`` message that is not ours was typed on the phone by an agent: it is stored as the
  agent's reply, and the bot pauses for that contact;
- group chats are not answered (nor stored) unless ``answer_groups``;
- a shape the adapter does not know is kept whole (``UnsupportedPayload``) for a person.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Update, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway_bridge import ConnectionUpdate, Event, Ignored, InboundMessage, StatusUpdate
from gateway_bridge.events import MEDIA_TYPES, SendError
from gateway_bridge.http import inline
from server.db import engine_of
from server.schema import Conversation, Message, UnsupportedPayload
from server.services import connection, contacts, journey, media, phone_side, statuses
from server.services.scrub import scrubbed

log = logging.getLogger(__name__)
# Types nobody expects an answer to: stored for the agents, no turn.
SILENT = {"reaction", "sticker", "system", "unsupported"}
VOICE = ("audio", "voice")


@dataclass(frozen=True)
class Rules:
    stale_after: timedelta
    data_dir: Path
    media_max_bytes: int
    answer_groups: bool = False
    answer_while_queued: bool = True  # see Settings.answer_while_queued


class Receiving(Protocol):
    """The number a webhook came to: an ``Instance``, or ``instances.Number`` (the columns a
    webhook reads)."""

    @property
    def id(self) -> int: ...
    @property
    def ai_enabled(self) -> bool: ...


@dataclass
class Outcome:
    """What a webhook changed; ``turns`` are the conversations that now need a turn,
    ``fetch`` the messages whose file is to be downloaded."""

    stored: int = 0
    duplicates: int = 0
    ignored: int = 0
    statuses: int = 0
    turns: list[int] = field(default_factory=list)
    fetch: list[int] = field(default_factory=list)


def handle(sessions: sessionmaker[Session], instance: Receiving, events: list[Event],
           rules: Rules, *, body: bytes = b"", via: str | None = None,
           conn: Connection | None = None) -> Outcome:
    """Apply a webhook's events; safe to call again with the same webhook. Messages are
    stored on ``conn`` when given (not in a transaction), else on a connection of their own."""
    out = Outcome()
    stored: list[tuple[int, str]] = []
    for ev in events:
        if isinstance(ev, StatusUpdate):
            out.statuses += statuses.apply(sessions, instance.id, ev)
        elif isinstance(ev, ConnectionUpdate):
            connection.apply(sessions, instance.id, ev)
        elif isinstance(ev, Ignored):
            out.ignored += 1
            if ev.unknown:
                keep_unknown(sessions, instance.id, ev.reason, body)
        elif ev.is_group and not rules.answer_groups:
            out.ignored += 1
        elif ev.from_me:
            if phone_side.from_phone(sessions, instance, ev, rules):
                out.stored += 1
            else:
                out.duplicates += 1
        else:
            conv_id, needs_turn = store_inbound(sessions, instance, ev, rules, via=via,
                                                fetch=out.fetch, conn=conn)
            if needs_turn is None:
                out.duplicates += 1
                continue
            out.stored += 1
            stored.append((instance.id, ev.provider_message_id))
            if needs_turn and conv_id not in out.turns:
                out.turns.append(conv_id)
    revokes_kept(sessions, stored)
    return out


def revokes_kept(sessions: sessionmaker[Session], stored: list[tuple[int, str]]) -> None:
    """A customer's revoke that came before its message, applied now it is stored (after its
    commit, see ``statuses``). A failure leaves it kept, and the webhook answered as stored,
    which it is."""
    try:
        statuses.revoke_kept(sessions, stored)
    except Exception:  # noqa: BLE001 - see above
        log.exception("kept revokes not applied")


def keep_unknown(sessions: sessionmaker[Session], instance_id: int, reason: str,
                 body: bytes) -> None:
    with sessions.begin() as s:
        s.add(UnsupportedPayload(instance_id=instance_id, reason=reason[:300], body=scrubbed(
            body.decode("utf-8", "replace").replace("\x00", ""))))  # a gateway's keys: out
    log.warning("unsupported webhook payload kept for instance %d: %s", instance_id, reason)


def store_inbound(sessions: sessionmaker[Session], instance: Receiving, ev: InboundMessage,
                  rules: Rules, *, via: str | None = None, fetch: list[int] | None = None,
                  conn: Connection | None = None) -> tuple[int, bool | None]:
    """Store a customer message once. Returns (conversation, needs a turn), None for the
    second if it is a duplicate; a message whose file is to be downloaded joins ``fetch``.

    A customer already known on this number (the common case) costs one transaction of Core
    statements on ``conn`` if given (a webhook's, not in a transaction), else
    on a connection of its own. A new customer is resolved first (``contacts.resolve``,
    concurrent-safe), then the message is stored the same way."""
    file, reason = file_of(ev, rules)
    with _connection(sessions, conn) as c:
        done = _store(c, instance, ev, rules, via, fetch, file, reason)
        if done is None:
            contact_id = contacts.resolve(sessions, phone=ev.phone, lid=ev.lid,
                                          name=ev.sender_name, address=ev.sender)
            conv_id = contacts.conversation_for(sessions, contact_id, instance.id, ev.sender)
            done = _store(c, instance, ev, rules, via, fetch, file, reason, conv_id)
    assert done is not None  # a conversation by id is always found
    return done


@contextmanager
def _connection(sessions: sessionmaker[Session], conn: Connection | None
                ) -> Iterator[Connection]:
    """The caller's connection (a webhook's: a pool check-out and its reset fewer per
    message), or one of the engine's for the while."""
    if conn is not None:
        yield conn
    else:
        with engine_of(sessions).connect() as c:
            yield c


def _store(c: Connection, instance: Receiving, ev: InboundMessage, rules: Rules,
           via: str | None, fetch: list[int] | None, file: dict[str, object] | None,
           reason: str | None, conv_id: int | None = None) -> tuple[int, bool | None] | None:
    """The message in one transaction: into ``conv_id``'s conversation, or else the known
    customer's (None, nothing written, if there is none). A second copy is refused by the
    unique key (instance, provider id) and gets a ``duplicate`` step instead."""
    status = first_status(ev, rules)
    try:
        with c.begin():
            conv = (contacts.conversation(c, conv_id) if conv_id is not None else
                    contacts.known(c, phone=ev.phone, lid=ev.lid, instance_id=instance.id,
                                   address=ev.sender))
            if conv is None:
                return None
            msg_id, status = _insert(c, instance, conv, ev, status, file, reason, via, rules)
    except IntegrityError:
        with c.begin():
            existing = c.execute(select(Message.id, Message.conversation_id).where(
                Message.instance_id == instance.id,
                Message.provider_message_id == ev.provider_message_id)).first()
            if existing is None:  # not a duplicate: the gateway must deliver it again
                raise
            journey.append(c, existing.id, [("duplicate", {"detail": "delivered again",
                                                           **_found(via)})])
        return existing.conversation_id, None
    if file is not None and file["state"] == "waiting" and fetch is not None:
        fetch.append(msg_id)
    return conv.id, needs_turn(ev, status)


_MESSAGES = insert(Message).returning(Message.id)


@cache
def _touch(columns: frozenset[str]) -> Update:
    """The conversation's UPDATE of these columns, built once (its cache key is kept)."""
    return (update(Conversation).where(Conversation.id == bindparam("conv"))
            .values({k: bindparam(k) for k in columns}))


def _found(via: str | None) -> dict[str, Any]:
    return {"found_by": via} if via else {}


@dataclass(frozen=True)
class Planned:
    """A customer message as it will be written: its row, first journey steps and status."""

    row: dict[str, Any]
    steps: list[tuple[str, dict[str, Any]]]
    status: str


def plan(instance: Receiving, conv: contacts.Known, ev: InboundMessage, status: str,
         file: dict[str, object] | None, reason: str | None, via: str | None,
         rules: Rules) -> Planned:
    """What storing ``ev`` writes, decided from its conversation (``conv``: a row of
    ``contacts.known``), with no statement run: one place for the rules, whether one message
    is stored (``_insert``) or a batch of them (``server.services.inbound_batch``).

    A message no bot will answer (a person has the conversation, or the assistant is off on
    the number) goes to the humans here, as its turn would have sent it, without one."""
    # While a team's queue holds it and no agent has answered, the assistant may still answer.
    waiting = (conv.status == "queued" and conv.agent_replied_at is None
               and rules.answer_while_queued and instance.ai_enabled)
    for_humans = status == "pending" and ((conv.mode == "human" and not waiting) or
                                          (conv.mode == "ai" and not instance.ai_enabled))
    if for_humans:
        status = "handed_off"
    row = {"instance_id": instance.id, "conversation_id": conv.id, "direction": "in",
           "author": "customer", "provider_message_id": ev.provider_message_id,
           "text": ev.text, "type": ev.type, "media": file, "via": via, "status": status,
           "sent_at": ev.timestamp}
    steps: list[tuple[str, dict[str, Any]]] = [
        ("received", {"provider_id": ev.provider_message_id, "type": ev.type, **_found(via)})]
    if file is not None and file["state"] != "waiting":
        steps.append((f"media_{file['state']}",
                      {"reason": reason} if reason else {"sha256": file["sha256"]}))
    if status == "stale":
        steps.append(("stale", {"reason": "history the gateway sent after a reconnect"
                                if ev.backlog else "arrived late; left for a human"}))
    elif status == "ignored":
        steps.append(("not_answered", {"reason": f"a {ev.type}: nothing to answer; left for "
                                       "a human"}))
    elif for_humans:
        steps.append(("for_human", {"mode": conv.mode if instance.ai_enabled else "ai_off"}))
    return Planned(row, steps, status)


def first_status(ev: InboundMessage, rules: Rules) -> str:
    """``stale`` (history, or too old to answer), ``ignored`` (nothing to answer: a reaction,
    a sticker, an empty text) or ``pending`` (for a turn), before the conversation is read."""
    stale = ev.backlog or ev.timestamp < datetime.now(UTC) - rules.stale_after
    silent = ev.type in SILENT or not (ev.text.strip() or ev.type in MEDIA_TYPES)
    return "stale" if stale else "ignored" if silent else "pending"


def needs_turn(ev: InboundMessage, status: str) -> bool:
    """Every message left for a bot has its turn: a voice note's transcribes it
    (server.engine.voice); a file's with no words hands it to a person, or a flow re-asks
    (server.engine.turns)."""
    return status == "pending" and (bool(ev.text.strip()) or ev.type in MEDIA_TYPES)


def touch(conv: contacts.Known, ev: InboundMessage) -> dict[str, Any]:
    """The conversation's columns this message changes: replies go where the customer last
    wrote from, and its last customer message."""
    changes: dict[str, Any] = {}
    if conv.address != ev.sender:
        changes["address"] = ev.sender
    if conv.last_inbound_at is None or conv.last_inbound_at < ev.timestamp:
        changes["last_inbound_at"] = ev.timestamp
    return changes


def _insert(c: Connection, instance: Receiving, conv: contacts.Known, ev: InboundMessage,
            status: str, file: dict[str, object] | None, reason: str | None, via: str | None,
            rules: Rules) -> tuple[int, str]:
    """The message, its first journey steps, and its conversation's address and last customer
    message; returns the message's id and status."""
    planned = plan(instance, conv, ev, status, file, reason, via, rules)
    # The unique key (instance, provider id) refuses a second copy here: IntegrityError.
    msg_id: int = c.execute(_MESSAGES, planned.row).scalar_one()
    journey.append(c, msg_id, planned.steps)
    changes = touch(conv, ev)
    if changes:
        c.execute(_touch(frozenset(changes)), {"conv": conv.id, **changes})
    return msg_id, planned.status


def file_of(ev: InboundMessage, rules: Rules) -> tuple[dict[str, object] | None, str | None]:
    """What the message records of its file; a file carried inline is kept at once."""
    if ev.media is None:
        return None, None
    m = ev.media
    base: dict[str, object] = {k: v for k, v in (("mime", m.mime), ("filename", m.filename),
                                                 ("size", m.size)) if v is not None}
    if m.data is None:
        return {**base, "state": "waiting", **{k: v for k, v in (("ref", m.ref), ("url", m.url))
                                               if v is not None}}, None
    try:
        data = inline(m.data, max_bytes=rules.media_max_bytes, gateway="the gateway")
        return {**base, **media.keep(rules.data_dir, data, m.mime,
                                     max_bytes=rules.media_max_bytes,
                                     filename=m.filename)}, None
    except (media.Refused, ValueError, SendError) as exc:
        return {**base, "state": "refused", "reason": str(exc)}, str(exc)
