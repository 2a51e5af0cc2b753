"""Reconciliation: ask Evolution and WAHA for each active chat's recent messages and store any
their webhooks never delivered.

Gateways lose webhooks: a restart, a timeout on our side past their last retry, a bug. The
customer waits for an answer to a message we never saw. Every message found this way is stored
through the same path as a webhook's (unique on its id: one already stored is a no-op), marked
``via="reconciliation"`` and counted; a recent one is answered like any other, an old one is
left for a human as stale.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway_bridge import NotOffered, SendError, adapter_for
from server.schema import Conversation, Instance, utcnow
from server.services import inbound
from server.services.instances import config

log = logging.getLogger(__name__)
RECONCILED = ("evolution", "waha")
RECENT = 20  # messages asked per chat


@dataclass
class Found:
    found: int = 0
    turns: list[int] = field(default_factory=list)
    fetch: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def run(http: httpx.Client, sessions: sessionmaker[Session], rules: inbound.Rules, *,
        active_for: timedelta) -> Found:
    """One pass over every connected Evolution and WAHA number's active chats."""
    since = utcnow() - active_for
    with sessions() as s:
        chats = list(s.execute(
            select(Instance, Conversation.address).join(
                Conversation, Conversation.instance_id == Instance.id)
            .where(Instance.provider.in_(RECONCILED), Instance.deleted_at.is_(None),
                   Instance.connection_state == "connected",
                   Conversation.last_inbound_at >= since)).tuples())
        for inst, _ in chats:
            s.expunge(inst)
    out = Found()
    for inst, chat in chats:
        try:
            msgs = adapter_for(inst.provider).recent(http, config(inst), chat, limit=RECENT)
        except (SendError, NotOffered) as exc:
            out.errors.append(f"{inst.name}: {exc}")
            continue
        fresh = [m for m in msgs if not m.from_me]
        step = inbound.handle(sessions, inst, list(fresh), rules, via="reconciliation")
        out.found += step.stored
        out.turns += [c for c in step.turns if c not in out.turns]
        out.fetch += step.fetch
    if out.found:
        log.warning("reconciliation found %d messages no webhook delivered", out.found)
    return out
