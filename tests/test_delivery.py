"""Sending replies and their delivery statuses: retries that wait, order kept, statuses that
only move forward, early ones kept until their send is recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from gateway_bridge import InboundMessage, StatusUpdate
from server.schema import EarlyStatus, Message, MessageEvent, Outbox
from server.services import inbound, outbox, statuses
from tests.test_store import STALE, _msg


def test_statuses_only_move_forward(sessions, inst) -> None:
    conv_id, _ = inbound.store_inbound(sessions, inst, _msg("q1"), STALE)
    with sessions.begin() as s:
        s.add(Message(instance_id=inst.id, conversation_id=conv_id, direction="out",
                      author="assistant", provider_message_id="r1", text="ok", status="sent"))
    now = datetime.now(UTC)
    assert statuses.apply(sessions, inst.id, StatusUpdate("r1", "read", now)) == 1
    assert statuses.apply(sessions, inst.id, StatusUpdate("r1", "delivered", now)) == 1
    assert statuses.apply(sessions, inst.id, StatusUpdate("nope", "read", now)) == 0
    with sessions() as s:
        assert s.scalar(select(Message.status).where(Message.provider_message_id == "r1")) == "read"


def _queued_reply(sessions, inst, text: str) -> int:
    """An assistant reply waiting in the outbox, in the conversation of message o1."""
    conv_id, _ = inbound.store_inbound(sessions, inst, _msg("o1"), STALE)
    with sessions.begin() as s:
        reply = Message(instance_id=inst.id, conversation_id=conv_id, direction="out",
                        author="assistant", text=text, status="queued")
        s.add(reply)
        s.flush()
        box = Outbox(message_id=reply.id)
        s.add(box)
        s.flush()
        return box.id


def test_outbox_retries_then_sends_and_gives_up_on_refusal(sessions, inst, fake_gateway) -> None:
    with sessions.begin() as s:
        s.merge(inst).api_url = fake_gateway.url
    box = _queued_reply(sessions, inst, "Olá! Entregamos sim.")
    fake_gateway.answers = [500, 503, (429, {"Retry-After": "7"}), 200]
    with httpx.Client() as http:
        waits = []
        for _ in range(3):  # down a while: each wait doubles, unless the gateway names one
            with pytest.raises(outbox.RetryLater) as later:
                outbox.deliver(http, sessions, box, max_attempts=5)
            waits.append(later.value.after)
        assert waits == [2, 4, 7]
        assert outbox.deliver(http, sessions, box, max_attempts=3) == "sent"
        assert outbox.deliver(http, sessions, box, max_attempts=3) == "sent"  # no resend
    assert fake_gateway.received == [("5511987650000", "Olá! Entregamos sim.")] * 4
    with sessions() as s:
        events = s.scalars(select(MessageEvent.event).join(Outbox, Outbox.message_id ==
                           MessageEvent.message_id).where(Outbox.id == box)
                           .order_by(MessageEvent.id))
        assert list(events) == ["send_error"] * 3 + ["sent"]

    refused = _queued_reply(sessions, inst, "De nada!")
    fake_gateway.answers = [401]
    with httpx.Client() as http:
        assert outbox.deliver(http, sessions, refused, max_attempts=3) == "failed"
    with sessions() as s:
        assert s.get_one(Outbox, refused).last_error == "simulator answered 401: nope"
        assert s.get_one(Message, s.get_one(Outbox, refused).message_id).status == "failed"


def test_a_status_that_beats_the_send_response_is_kept_and_applied(
        sessions, inst, fake_gateway) -> None:
    with sessions.begin() as s:
        s.merge(inst).api_url = fake_gateway.url
    box = _queued_reply(sessions, inst, "Chega amanhã.")
    now = datetime.now(UTC)
    early = []

    def webhook_first(pid: str) -> None:  # the gateway reports delivery, twice, before replying
        for _ in range(2):
            early.append(statuses.apply(sessions, inst.id, StatusUpdate(pid, "delivered", now)))

    fake_gateway.before_reply = webhook_first
    with httpx.Client() as http:
        assert outbox.deliver(http, sessions, box, max_attempts=3) == "sent"
    assert early == [0, 0]  # not known yet: kept, not applied, and kept once
    with sessions() as s:
        msg = s.get_one(Message, s.get_one(Outbox, box).message_id)
        assert (msg.provider_message_id, msg.status) == ("gw-1", "delivered")
        journey = s.execute(select(MessageEvent.event, MessageEvent.detail)
                            .where(MessageEvent.message_id == msg.id)
                            .order_by(MessageEvent.id)).all()
        assert [e for e, _ in journey] == ["sent", "delivered"]
        assert journey[1][1] == {"early": True}
        kept = s.scalars(select(EarlyStatus)).all()
        assert [(k.status, k.applied_to) for k in kept] == [("delivered", msg.id)]
    # Settling again (the webhook side's own check) applies nothing twice.
    assert statuses.settle(sessions, inst.id, "gw-1") == 0


def test_statuses_no_send_claims_are_purged_after_days_the_rest_kept(sessions, inst) -> None:
    """Statuses of messages sent from the phone itself never meet a send of ours."""
    conv_id, _ = inbound.store_inbound(sessions, inst, _msg("p1"), STALE)
    old = datetime.now(UTC) - timedelta(days=3)
    with sessions.begin() as s:
        ours = Message(instance_id=inst.id, conversation_id=conv_id, direction="out",
                       author="assistant", text="ok", status="delivered",
                       provider_message_id="gw-ours")
        s.add(ours)
        s.flush()
        s.add_all([
            EarlyStatus(instance_id=inst.id, provider_message_id="phone-1", status="read",
                        received_at=old),  # from the phone, days ago: goes
            EarlyStatus(instance_id=inst.id, provider_message_id="phone-2", status="read"),
            EarlyStatus(instance_id=inst.id, provider_message_id="gw-ours", status="delivered",
                        received_at=old, applied_to=ours.id)])  # applied: part of the record
    assert statuses.purge(sessions, timedelta(days=2)) == 1
    assert statuses.purge(sessions, timedelta(days=2)) == 0
    with sessions() as s:
        assert sorted(s.scalars(select(EarlyStatus.provider_message_id))) == ["gw-ours",
                                                                              "phone-2"]
    from server.queue import huey
    from server.tasks import purge_early_statuses

    due = {type(t) for t in huey().read_periodic(datetime(2026, 11, 27, 10, 17))}
    assert purge_early_statuses.wrapper.task_class in due  # the consumer runs it hourly


def test_replies_leave_in_order_even_when_the_first_is_retrying(sessions, inst,
                                                                fake_gateway) -> None:
    with sessions.begin() as s:
        s.merge(inst).api_url = fake_gateway.url
    first = _queued_reply(sessions, inst, "Primeira resposta.")
    second = _queued_reply(sessions, inst, "Segunda resposta.")
    fake_gateway.answers = [503, 503]
    with httpx.Client() as http:
        with pytest.raises(outbox.RetryLater):
            outbox.deliver(http, sessions, first, max_attempts=5)
        with pytest.raises(outbox.Waiting) as waiting:
            outbox.deliver(http, sessions, second, max_attempts=5)
        assert waiting.value.after == 1  # the first may be going through right now
        with pytest.raises(outbox.RetryLater):
            outbox.deliver(http, sessions, first, max_attempts=5)
        with pytest.raises(outbox.Waiting) as waiting:
            outbox.deliver(http, sessions, second, max_attempts=5)
        assert waiting.value.after == 4  # when the first is tried again, not every second
        assert outbox.deliver(http, sessions, first, max_attempts=5) == "sent"
        assert outbox.deliver(http, sessions, second, max_attempts=5) == "sent"
    assert [t for _, t in fake_gateway.received] == [
        "Primeira resposta."] * 3 + ["Segunda resposta."]
    with sessions() as s:
        assert s.get_one(Outbox, second).attempts == 1  # waiting spent no attempt


def _echo(sessions, inst, provider_id: str, text: str) -> inbound.Outcome:
    """The gateway's webhook for a message sent from the number: our send, echoed back."""
    ev = InboundMessage(provider_message_id=provider_id, sender="5511987650000",
                        phone="5511987650000", lid=None, sender_name=None, text=text,
                        timestamp=datetime.now(UTC), from_me=True)
    return inbound.handle(sessions, inst, [ev], STALE)


def _journey(sessions, box: int) -> list[str]:
    with sessions() as s:
        return list(s.scalars(select(MessageEvent.event).join(
            Outbox, Outbox.message_id == MessageEvent.message_id).where(Outbox.id == box)
            .order_by(MessageEvent.id)))


def test_a_send_whose_answer_times_out_is_not_sent_again_once_its_echo_came(
        sessions, inst, fake_gateway) -> None:
    """The gateway took the send and the answer never came: its echo shows it went out, so the
    customer gets the reply once, whether the echo comes before the timeout or after it."""
    with sessions.begin() as s:
        s.merge(inst).api_url = fake_gateway.url
    during = _queued_reply(sessions, inst, "Seu pedido sai hoje.")
    fake_gateway.before_reply = lambda _pid: _echo(sessions, inst, "wa-echo-1",
                                                   "Seu pedido sai hoje.")
    fake_gateway.stall = 1.0
    with httpx.Client(timeout=0.3) as http:
        assert outbox.deliver(http, sessions, during, max_attempts=5) == "sent"  # no retry
    assert _journey(sessions, during) == ["echo", "sent", "send_error"]
    with sessions() as s:
        msg = s.get_one(Message, s.get_one(Outbox, during).message_id)
        assert (msg.provider_message_id, msg.status) == ("wa-echo-1", "sent")

    after = _queued_reply(sessions, inst, "Chega amanhã.")
    fake_gateway.before_reply = None
    with httpx.Client(timeout=0.3) as http:
        with pytest.raises(outbox.RetryLater):  # no answer, no echo yet: it may not have gone
            outbox.deliver(http, sessions, after, max_attempts=5)
        assert _echo(sessions, inst, "wa-echo-2", "Chega amanhã.").stored == 0  # late echo
        fake_gateway.stall = 0.0
        assert outbox.deliver(http, sessions, after, max_attempts=5) == "sent"
    assert [t for _, t in fake_gateway.received] == ["Seu pedido sai hoje.", "Chega amanhã."]
    assert _journey(sessions, after) == ["send_error", "echo", "sent"]
    with sessions() as s:
        assert s.get_one(Message, s.get_one(Outbox, after).message_id).provider_message_id == \
            "wa-echo-2"


def test_an_echo_before_the_send_answer_records_the_send_once(sessions, inst,
                                                              fake_gateway) -> None:
    with sessions.begin() as s:
        s.merge(inst).api_url = fake_gateway.url
    box = _queued_reply(sessions, inst, "Temos sim.")
    fake_gateway.before_reply = lambda pid: _echo(sessions, inst, pid, "Temos sim.")
    with httpx.Client() as http:
        assert outbox.deliver(http, sessions, box, max_attempts=3) == "sent"
    assert _journey(sessions, box) == ["echo", "sent"]
    with sessions() as s:
        assert s.get_one(Message, s.get_one(Outbox, box).message_id).provider_message_id == "gw-1"


def _given_up(sessions, inst, fake_gateway, text: str) -> int:
    """A reply whose one try timed out after the gateway took it: failed, though it went."""
    box = _queued_reply(sessions, inst, text)
    fake_gateway.stall = 1.0
    try:
        with httpx.Client(timeout=0.3) as http:
            assert outbox.deliver(http, sessions, box, max_attempts=1) == "failed"
    finally:
        fake_gateway.stall = 0.0
    return box


def test_an_echo_after_the_last_try_failed_records_the_send_and_pauses_nothing(
        sessions, inst, fake_gateway) -> None:
    """The last try timed out after the gateway took it, so the reply was given up on; its echo
    then shows it went out. It is recorded as sent (no one replays it from the dead letters)
    and not as an agent typing on the phone, which would pause the bot. Much later, the same
    words from the phone are an agent's."""
    from server.schema import Conversation

    with sessions.begin() as s:
        s.merge(inst).api_url = fake_gateway.url
    box = _given_up(sessions, inst, fake_gateway, "Pode trocar em até 7 dias.")
    assert _echo(sessions, inst, "wa-late-1", "Pode trocar em até 7 dias.").stored == 0
    assert _journey(sessions, box) == ["send_error", "failed", "echo", "sent"]
    with sessions() as s:
        sent = s.get_one(Outbox, box)
        msg = s.get_one(Message, sent.message_id)
        assert (sent.status, msg.status, msg.provider_message_id) == ("sent", "sent", "wa-late-1")
        assert s.get_one(Conversation, msg.conversation_id).mode != "human"
    with pytest.raises(LookupError):  # not a dead letter any more: a replay would send it twice
        outbox.replay(sessions, box)

    again = _given_up(sessions, inst, fake_gateway, "Pode trocar em até 7 dias.")
    with sessions.begin() as s:  # given up on long ago
        s.get_one(Outbox, again).updated_at = datetime.now(UTC) - timedelta(hours=1)
    assert _echo(sessions, inst, "wa-typed-1", "Pode trocar em até 7 dias.").stored == 1
    with sessions() as s:
        assert s.get_one(Outbox, again).status == "failed"
        conv = s.get_one(Message, s.get_one(Outbox, again).message_id).conversation_id
        assert s.get_one(Conversation, conv).mode == "human"


def test_a_status_naming_our_reference_records_a_send_whose_answer_was_lost(
        sessions, inst, fake_gateway) -> None:
    """The Cloud API sends no echo, but gives back on a message's statuses the reference its
    send carried (``biz_opaque_callback_data``): a status for an id we never got, naming our
    message, shows the send went. Waiting to be tried again, it is not sent again; given up
    on, it leaves the dead letters. A reference to no message of ours changes nothing."""
    with sessions.begin() as s:
        s.merge(inst).api_url = fake_gateway.url
    waiting = _queued_reply(sessions, inst, "Enviamos hoje.")
    fake_gateway.stall = 1.0
    with httpx.Client(timeout=0.3) as http:
        with pytest.raises(outbox.RetryLater):  # no answer: it may not have gone
            outbox.deliver(http, sessions, waiting, max_attempts=5)
        fake_gateway.stall = 0.0
        with sessions() as s:
            ref = f"out-{s.get_one(Outbox, waiting).message_id}"
        sent = StatusUpdate(provider_message_id="wamid.lost-1", status="sent",
                            timestamp=datetime.now(UTC), ref=ref)
        assert statuses.apply(sessions, inst.id, sent) == 1
        assert outbox.deliver(http, sessions, waiting, max_attempts=5) == "sent"  # not again
    assert [t for _, t in fake_gateway.received] == ["Enviamos hoje."]
    assert _journey(sessions, waiting) == ["send_error", "sent"]

    given_up = _given_up(sessions, inst, fake_gateway, "Chega amanhã.")
    with sessions() as s:
        ref = f"out-{s.get_one(Outbox, given_up).message_id}"
    for wamid, status, named in (("wamid.other", "read", "out-999999"),
                                 ("wamid.lost-2", "delivered", ref)):
        statuses.apply(sessions, inst.id, StatusUpdate(
            provider_message_id=wamid, status=status, timestamp=datetime.now(UTC), ref=named))
    assert _journey(sessions, given_up) == ["send_error", "failed", "sent", "delivered"]
    with sessions() as s:
        box = s.get_one(Outbox, given_up)
        msg = s.get_one(Message, box.message_id)
        assert (box.status, msg.status, msg.provider_message_id) == (
            "sent", "delivered", "wamid.lost-2")
    with pytest.raises(LookupError):  # not a dead letter any more: a replay would send it twice
        outbox.replay(sessions, given_up)


def test_a_revoke_kept_applies_to_a_message_reconciliation_stores(sessions, inst) -> None:
    """The revoke came, its message was lost by the gateway's webhook and found later by
    reconciliation (``inbound.handle``, as every path that stores a message): marked deleted
    and not answered there too."""
    revoke = StatusUpdate(provider_message_id="lost-1", status="deleted",
                          timestamp=datetime.now(UTC))
    assert statuses.apply(sessions, inst.id, revoke) == 0  # kept: no such message yet
    out = inbound.handle(sessions, inst, [_msg("lost-1", text="cancela meu pedido")], STALE,
                         via="reconcile")
    assert out.stored == 1
    with sessions() as s:
        msg = s.scalars(select(Message).where(Message.provider_message_id == "lost-1")).one()
        assert msg.status == "ignored"
        steps = s.scalars(select(MessageEvent).where(MessageEvent.message_id == msg.id)
                          .order_by(MessageEvent.id)).all()
        assert (steps[-1].event, steps[-1].detail["early"]) == ("deleted", True)
