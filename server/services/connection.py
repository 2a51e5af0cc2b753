"""Connection truth: whether each number is linked to WhatsApp, from the gateway's events and
from asking the gateway itself.

Events alone are not enough: a Baileys socket can die while the gateway keeps saying "open"
and sends nothing. So a periodic check asks each gateway (``gateway_bridge`` ``connection``),
and a gateway that does not answer counts as disconnected. While a number is not connected its
replies wait in the outbox (server.services.outbox) instead of failing, and ``alert`` says so.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway_bridge import ConnectionUpdate, NotOffered, adapter_for
from server.schema import Instance, Message, Outbox, UnsupportedPayload, utcnow
from server.services.instances import config, redact

log = logging.getLogger(__name__)
CHECKS_AT_ONCE = 64


def apply(sessions: sessionmaker[Session], instance_id: int, ev: ConnectionUpdate, *,
          checked: bool = False) -> bool:
    """Record a connection state; ``checked`` when we asked the gateway (not an event).
    Returns True when the state changed."""
    with sessions.begin() as s:
        inst = s.get_one(Instance, instance_id)
        detail = redact(ev.detail or "", config(inst))  # the gateway's words may echo a key
        changed = inst.connection_state != ev.state
        if changed:
            inst.connection_since = utcnow()
            log.warning("instance %s is now %s (%s)", inst.name, ev.state, detail or "-")
        inst.connection_state = ev.state
        inst.connection_detail = detail[:200] or None
        if ev.state == "pairing" and ev.qr:
            inst.qr = ev.qr
        elif ev.state == "connected":
            inst.qr = None
        if checked:
            inst.connection_checked_at = utcnow()
    return changed


def check(http: httpx.Client, sessions: sessionmaker[Session], instance_id: int) -> str:
    """Ask the number's gateway whether it is linked, record the answer, return the state."""
    with sessions() as s:
        inst = s.get_one(Instance, instance_id)
        provider, cfg = inst.provider, config(inst)
    ev = adapter_for(provider).connection(http, cfg)
    apply(sessions, instance_id, ev, checked=True)
    return ev.state


def check_all(http: httpx.Client, sessions: sessionmaker[Session]) -> dict[str, str]:
    """Check every live number's gateway; one that fails to answer does not stop the rest."""
    with sessions() as s:
        ids = list(s.execute(select(Instance.id, Instance.name).where(
            Instance.deleted_at.is_(None), Instance.provider != "simulator")).tuples())
    def one(instance_id: int, name: str) -> tuple[str, str | None]:
        try:
            return name, check(http, sessions, instance_id)
        except Exception:  # a bug in one adapter must not blind us to the others
            log.exception("connection check of %s failed", name)
            return name, None

    # All at once: one hung gateway (often the same Evolution server for every number) costs
    # one timeout, not one per number, so a dead socket is still seen within a minute.
    with ThreadPoolExecutor(max_workers=max(1, min(len(ids), CHECKS_AT_ONCE))) as pool:
        done = list(pool.map(lambda row: one(*row), ids))
    return {name: state for name, state in done if state is not None}


def qr(http: httpx.Client, sessions: sessionmaker[Session], name: str) -> str | None:
    """The QR code to pair the number again: asked of the gateway, else the last one an event
    brought. NotOffered for gateways with no pairing (the Cloud API)."""
    with sessions() as s:
        inst = s.scalars(select(Instance).where(Instance.name == name,
                                                Instance.deleted_at.is_(None))).one_or_none()
        if inst is None:
            raise LookupError(f"no instance {name!r}")
        provider, cfg, kept = inst.provider, config(inst), inst.qr
    try:
        return adapter_for(provider).qr(http, cfg) or kept
    except NotOffered:
        raise
    except Exception as exc:
        log.warning("QR code of %s not fetched: %s", name, redact(str(exc), cfg))
        return kept


def alert(inst: Instance) -> str | None:
    """What a person must do about this number, in words; None when it works."""
    since = f" since {inst.connection_since:%Y-%m-%d %H:%M} UTC" if inst.connection_since else ""
    why = f" ({inst.connection_detail})" if inst.connection_detail else ""
    kind = trouble(inst)
    if kind == "disconnected":
        return (f"not connected to WhatsApp{since}{why}: replies wait in the outbox until it "
                "is; check the gateway" + (", or pair it again with its QR code"
                                            if pairs(inst) else ""))
    if kind == "pairing":
        return f"waiting to be paired{since}: scan its QR code (GET /api/instances/{inst.name}/qr)"
    if kind == "capped":
        return f"reached its daily cap of {inst.daily_cap} sends: the rest wait until tomorrow"
    return None


def trouble(inst: Instance) -> str | None:
    """What ``alert`` is about, as a word a page words in its own language: disconnected,
    pairing or capped (the daily cap reached); None when the number works."""
    if inst.connection_state in ("disconnected", "pairing"):
        return inst.connection_state
    if inst.sent_today >= inst.daily_cap and inst.sent_day == today():
        return "capped"
    return None


def pairs(inst: Instance) -> bool:
    """Whether the number is linked by scanning a QR code (Evolution, WAHA)."""
    return inst.provider in ("evolution", "waha")


def today() -> str:
    """The day the daily cap counts in (UTC)."""
    return utcnow().strftime("%Y-%m-%d")


def counts(s: Session, instance_id: int) -> dict[str, int]:
    """What went wrong or was recovered on a number: messages found by reconciliation, shapes
    kept as unsupported, sends failed for good."""
    def n(q: Any) -> int:
        return int(s.scalar(q) or 0)

    return {
        "reconciled": n(select(func.count()).select_from(Message).where(
            Message.instance_id == instance_id, Message.via == "reconciliation")),
        "unsupported": n(select(func.count()).select_from(UnsupportedPayload).where(
            UnsupportedPayload.instance_id == instance_id)),
        "dead_letters": n(select(func.count()).select_from(Outbox).join(
            Message, Message.id == Outbox.message_id).where(
            Message.instance_id == instance_id, Outbox.status == "failed")),
    }
