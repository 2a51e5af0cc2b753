"""Delivery statuses of the messages we send: sent, delivered, read, failed; only forward.

A gateway may report a status before our outbox has recorded the id it returned for the send
(the webhook races the send's response). Such a status is kept (``EarlyStatus``, unique per
message id and status) and applied once the id is recorded; both sides check after their own
commit, so whichever commits second applies it, and a claim on the row applies it only once.
A customer's revoke can come before the message it takes back, too (a retried delivery
reordered): it is kept the same way and applied when the message is stored (``revoke_kept``).

A send whose answer never came (a timeout after the gateway had taken it) is known by no id.
Proof that it went anyway records it as sent (``taken``): its echo (``phone_side``), or a status
carrying the reference the send carried (Cloud's ``biz_opaque_callback_data``). Otherwise it is
tried again, and the customer gets the same reply twice; or, given up on, it sits in the dead
letters where a replay would send it twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, delete, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway_bridge import StatusUpdate
from server.schema import EarlyStatus, Message, Outbox, utcnow
from server.services import journey

log = logging.getLogger(__name__)
# How long after a send's last try failed a proof that it went still counts (an echo, a status
# naming it): a gateway gives one within seconds. Later, the same text from the phone is an
# agent typing it.
LATE = timedelta(minutes=10)
# Statuses only move forward; a late "delivered" never undoes "read". "deleted" (the sender
# revoked it) is last: the message stays, as everything does, with that step in its journey.
_RANK = {"queued": 0, "sent": 1, "delivered": 2, "read": 3, "played": 4, "failed": 5,
         "deleted": 6}


def apply(sessions: sessionmaker[Session], instance_id: int, ev: StatusUpdate) -> int:
    """Move an outbound message's status forward; returns 1 if its message is known yet."""
    error = " ".join(x for x in (f"[{ev.error_code}]" if ev.error_code else "", ev.error or "")
                     if x) or None
    with sessions.begin() as s:
        msg = _sent(s, instance_id, ev.provider_message_id)
        named = msg is None and ev.ref is not None and ev.status != "deleted"
        if named:  # a send whose answer was lost, named by the reference it carried
            msg = _by_ref(s, instance_id, ev)
        if msg is not None and not (named and ev.status == "sent"):  # ``taken`` said it
            _advance(s, msg, ev.status, error)
    if msg is not None:  # and any status kept while the outbox's own settle had failed
        settle(sessions, instance_id, ev.provider_message_id)
        return 1
    if ev.status == "deleted" and _revoked(sessions, instance_id, ev.provider_message_id):
        return 1
    try:
        with sessions.begin() as s:
            s.add(EarlyStatus(instance_id=instance_id, provider_message_id=ev.provider_message_id,
                              status=ev.status, error=error))
    except IntegrityError:
        return 0  # the gateway retried a status already kept
    log.info("status %s for %s kept until its message is recorded", ev.status,
             ev.provider_message_id)
    if ev.status == "deleted":  # the customer's message may have been stored meanwhile
        kept = revoke_kept(sessions, [(instance_id, ev.provider_message_id)])
        if kept:
            return kept
    return settle(sessions, instance_id, ev.provider_message_id)


def settle(sessions: sessionmaker[Session], instance_id: int, provider_message_id: str) -> int:
    """Apply the statuses kept for a message id, once it is recorded; returns how many."""
    applied = 0
    with sessions.begin() as s:
        msg = _sent(s, instance_id, provider_message_id)
        if msg is None:
            return 0
        early = s.scalars(select(EarlyStatus).where(
            EarlyStatus.instance_id == instance_id,
            EarlyStatus.provider_message_id == provider_message_id,
            EarlyStatus.applied_to.is_(None)).order_by(EarlyStatus.id)).all()
        for row in early:
            claimed = s.execute(update(EarlyStatus).where(
                EarlyStatus.id == row.id, EarlyStatus.applied_to.is_(None))
                .values(applied_to=msg.id)).rowcount  # type: ignore[attr-defined]
            if claimed:
                _advance(s, msg, row.status, row.error, early=True)
                applied += 1
    return applied


def purge(sessions: sessionmaker[Session], older_than: timedelta) -> int:
    """Drop kept statuses no send ever claimed, once older than ``older_than``: those of
    messages sent from the phone itself, which are not ours; returns how many went."""
    with sessions.begin() as s:
        return s.execute(delete(EarlyStatus).where(
            EarlyStatus.applied_to.is_(None),
            EarlyStatus.received_at < utcnow() - older_than)).rowcount  # type: ignore[attr-defined]


def revoke_kept(sessions: sessionmaker[Session], stored: list[tuple[int, str]]) -> int:
    """Apply the revokes kept for these customer messages (instance, provider id), now they
    are stored; returns how many. Called after the message's commit, as ``apply`` calls it
    after the revoke's: whichever commits second applies it, and the claim does it once."""
    if not stored:
        return 0
    applied = 0
    with sessions.begin() as s:
        kept = s.execute(select(EarlyStatus.id, EarlyStatus.instance_id,
                                EarlyStatus.provider_message_id).where(
            EarlyStatus.status == "deleted", EarlyStatus.applied_to.is_(None),
            tuple_(EarlyStatus.instance_id, EarlyStatus.provider_message_id).in_(stored)
        )).tuples().all()
        for row_id, instance_id, provider_message_id in kept:
            msg_id = _received(s, instance_id, provider_message_id)
            if msg_id is None:
                continue
            claimed = s.execute(update(EarlyStatus).where(
                EarlyStatus.id == row_id, EarlyStatus.applied_to.is_(None))
                .values(applied_to=msg_id)).rowcount  # type: ignore[attr-defined]
            if claimed:
                _mark_revoked(s, msg_id, early=True)
                applied += 1
    return applied


def _revoked(sessions: sessionmaker[Session], instance_id: int, provider_message_id: str) -> bool:
    with sessions.begin() as s:
        msg_id = _received(s, instance_id, provider_message_id)
        if msg_id is not None:
            _mark_revoked(s, msg_id)
    return msg_id is not None


def _received(s: Session, instance_id: int, provider_message_id: str) -> int | None:
    return s.scalar(select(Message.id).where(
        Message.instance_id == instance_id, Message.direction == "in",
        Message.provider_message_id == provider_message_id))


def _mark_revoked(s: Session, msg_id: int, early: bool = False) -> None:
    """A customer deleted a message they sent: it stays, marked, for the agents to know; one
    not answered yet is not answered (``ignored``), as the customer took it back."""
    s.execute(update(Message).where(Message.id == msg_id, Message.status == "pending")
              .values(status="ignored"))
    journey.record(s, msg_id, "deleted", reason="the customer deleted it for everyone",
                   **({"early": True} if early else {}))


REF_PREFIX = "out-"


def ref_for(message_id: int) -> str:
    """The reference a send carries and a gateway gives back on its statuses (Cloud's
    ``biz_opaque_callback_data``): it names our message when the send's answer was lost."""
    return f"{REF_PREFIX}{message_id}"


def message_of_ref(ref: str) -> int | None:
    """The message id in one of our references; None for anything else."""
    number = ref.removeprefix(REF_PREFIX)
    ours = ref.startswith(REF_PREFIX) and number.isascii() and number.isdigit() \
        and len(number) <= 18  # "²" is a digit to str.isdigit, not to int()
    return int(number) if ours else None


def unsure() -> ColumnElement[bool]:
    """An outbox row whose send may have gone without our knowing: tried, and in flight,
    waiting to be tried again after an answer that never came, or failed after its last try
    within ``LATE``. An echo or a status of such a send is its proof (``taken``)."""
    return and_(Outbox.attempts > 0,
                or_(Outbox.status == "pending",
                    and_(Outbox.status == "failed", Outbox.updated_at >= utcnow() - LATE)))


def _by_ref(s: Session, instance_id: int, ev: StatusUpdate) -> Message | None:
    """Our message whose send carried ``ev.ref``, recorded as sent under the status's id if its
    answer was lost; None if the reference names none of ours."""
    assert ev.ref is not None
    number = message_of_ref(ev.ref)
    if number is None:
        return None
    msg = s.scalar(select(Message).where(Message.id == number, Message.direction == "out",
                                         Message.instance_id == instance_id))
    if msg is None or msg.provider_message_id not in (None, ev.provider_message_id):
        return None
    if msg.provider_message_id is None and not taken(
            s, msg.id, ev.provider_message_id, f"its {ev.status} status showed"):
        return None
    return msg


def taken(s: Session, message_id: int, provider_id: str, proof: str) -> bool:
    """Record as sent, under ``provider_id``, our send not known to be sent (``unsure``; a
    failed one leaves the dead letters, so no one sends it again; its journey keeps the
    failure). ``proof`` says what showed it went. True when it was not yet recorded."""
    box = s.scalar(select(Outbox).where(Outbox.message_id == message_id, unsure())
                   .with_for_update())
    if box is None:
        return False
    msg = s.get_one(Message, message_id)
    was = box.status
    box.status, box.slot_at = "sent", None
    if msg.provider_message_id is None:
        msg.provider_message_id = provider_id
    if msg.status in ("queued", "failed"):
        msg.status = "sent"
    journey.record(s, message_id, "sent", provider_id=provider_id, attempt=box.attempts,
                   note=f"{proof} the gateway sent it" + (" after all" if was == "failed" else ""))
    return True


def _sent(s: Session, instance_id: int, provider_message_id: str) -> Message | None:
    return s.scalar(select(Message).where(Message.instance_id == instance_id,
                                          Message.provider_message_id == provider_message_id,
                                          Message.direction == "out"))


def _advance(s: Session, msg: Message, status: str, error: str | None,
             early: bool = False) -> None:
    # One conditional UPDATE, not read-then-write: a "read" committed meanwhile by another
    # webhook is never overwritten by an older "delivered".
    lower = [k for k, rank in _RANK.items() if rank < _RANK.get(status, -1)]
    if lower:
        s.execute(update(Message).where(Message.id == msg.id, Message.status.in_(lower))
                  .values(status=status))
    detail = {**({"error": error} if error else {}), **({"early": True} if early else {})}
    journey.record(s, msg.id, status, **detail)
