"""Webhooks stored in batches (server.services.intake, inbound_batch), on SQLite and PostgreSQL.

What a company relies on, now that many webhooks share one transaction: each message stored
once even when its copies land in the same batch, a retried one marked on the message already
stored, each customer's conversation moved to its newest message, and one bad webhook refused
alone while the others in its batch are stored."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from gateway_bridge import InboundMessage
from gateway_bridge import simulator as wire
from server.db import engine_of
from server.schema import Contact, Conversation, Instance, Message, MessageEvent
from server.services import inbound, inbound_batch, intake
from server.settings import Settings

RULES = inbound.Rules(stale_after=timedelta(minutes=10), data_dir=Path("/nonexistent"),
                      media_max_bytes=1)


@pytest.fixture
def quiet(sessions, inst):  # type: ignore[no-untyped-def]
    """The number with its assistant off: stored messages go to the humans, no turn queued."""
    with sessions.begin() as s:
        s.execute(update(Instance).where(Instance.id == inst.id).values(ai_enabled=False))
    with sessions() as s:
        return s.get_one(Instance, inst.id)


def _msg(pid: str, phone: str, text: str = "oi", at: datetime | None = None) -> InboundMessage:
    return InboundMessage(provider_message_id=pid, sender=phone, phone=phone, lid=None,
                          sender_name="Cliente", text=text, timestamp=at or datetime.now(UTC))


def _count(sessions, model, *where) -> int:  # type: ignore[no-untyped-def]
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def _known(sessions, inst, phone: str) -> None:  # type: ignore[no-untyped-def]
    """A customer who wrote before (the one-by-one path creates them)."""
    inbound.store_inbound(sessions, inst, _msg(f"first-{phone}", phone), RULES)


def test_a_batch_stores_each_message_once_and_marks_every_copy(sessions, quiet) -> None:
    ana, bia = "5511987650101", "5511987650102"
    _known(sessions, quiet, ana)
    _known(sessions, quiet, bia)
    later = datetime.now(UTC) + timedelta(seconds=5)
    hooks = [inbound_batch.Webhook(quiet, [_msg("m1", ana)], RULES),
             inbound_batch.Webhook(quiet, [_msg("m1", ana)], RULES),  # the same, retried
             inbound_batch.Webhook(quiet, [_msg("m2", bia, at=later)], RULES),
             inbound_batch.Webhook(quiet, [_msg(f"first-{ana}", ana)], RULES)]  # stored before
    with engine_of(sessions).connect() as c:
        inbound_batch.store(c, hooks)

    assert [(h.outcome.stored, h.outcome.duplicates) for h in hooks if h.outcome] == [
        (1, 0), (0, 1), (1, 0), (0, 1)]
    assert _count(sessions, Message, Message.provider_message_id == "m1") == 1
    with sessions() as s:
        m1 = s.scalars(select(Message).where(Message.provider_message_id == "m1")).one()
        first = s.scalars(select(Message).where(
            Message.provider_message_id == f"first-{ana}")).one()
        steps = lambda mid: [e.event for e in s.scalars(  # noqa: E731
            select(MessageEvent).where(MessageEvent.message_id == mid)
            .order_by(MessageEvent.id))]
        assert steps(m1.id) == ["received", "for_human", "duplicate"]
        assert steps(first.id)[-1] == "duplicate"
        assert m1.status == "handed_off"  # the assistant is off on the number
        conv = s.scalars(select(Conversation).join(Message).where(
            Message.provider_message_id == "m2")).one()
        assert conv.last_inbound_at is not None  # moved to its newest message
        assert abs(conv.last_inbound_at.replace(tzinfo=UTC) - later) < timedelta(seconds=1)


def test_a_webhook_with_a_new_customer_is_left_for_the_one_by_one_path(sessions, quiet) -> None:
    _known(sessions, quiet, "5511987650103")
    mixed = inbound_batch.Webhook(quiet, [_msg("k1", "5511987650103"),
                                          _msg("n1", "5511987650199")], RULES)
    with engine_of(sessions).connect() as c:
        inbound_batch.store(c, [mixed])
    assert mixed.outcome is None  # nothing of it written here
    assert _count(sessions, Message, Message.provider_message_id.in_(["k1", "n1"])) == 0
    assert _count(sessions, Contact) == 1


def _signed(inst: Instance, mid: str, phone: str, text: str) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps({"event": "message", "id": mid, "from": phone, "name": "Cliente",
                      "text": text, "timestamp": int(time.time())}).encode()
    return raw, {wire.SIGNATURE_HEADER.lower(): wire.sign(raw, inst.webhook_secret)}


def test_concurrent_webhooks_share_batches_and_a_bad_one_is_refused_alone(
        sessions, quiet, db_url, tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=db_url)
    phones = [f"55119876502{i:02d}" for i in range(12)]
    for p in phones[:6]:
        _known(sessions, quiet, p)

    async def deliver() -> list[object]:
        calls = []
        for i, p in enumerate(phones * 2):  # every message delivered twice, at once
            body, headers = _signed(quiet, f"c{i % len(phones)}", p, "quero saber do pedido")
            calls.append(intake.take(sessions, settings, "simulator", quiet.name, body,
                                     headers, {}))
        forged, _ = _signed(quiet, "forged", phones[0], "oi")
        calls.append(intake.take(sessions, settings, "simulator", quiet.name, forged,
                                 {wire.SIGNATURE_HEADER.lower(): "sha256=00"}, {}))
        calls.append(intake.take(sessions, settings, "simulator", "nobody", forged, {}, {}))
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(deliver())
    outcomes = [r for r in results if isinstance(r, inbound.Outcome)]
    refused = [r.status for r in results if isinstance(r, intake.Refused)]
    assert len(outcomes) == 24 and refused == [401, 404]
    assert sum(o.stored for o in outcomes) == 12 and sum(o.duplicates for o in outcomes) == 12
    assert _count(sessions, Message, Message.provider_message_id.like("c%")) == 12
    assert _count(sessions, Message, Message.provider_message_id == "forged") == 0
    assert _count(sessions, Contact) == 12  # the six new customers created once each
