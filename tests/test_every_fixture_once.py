"""Every message fixture of every gateway, delivered ten times at once, is stored once.

Gateways retry (Evolution up to 10 times) and may deliver the same event concurrently: the
unique key on (instance, provider id) decides, inside transactions, never memory. The reply
side (one reply per message) is shown end to end in test_gateways_inbound.py.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway_bridge import InboundMessage, adapter_for
from server.schema import Message, MessageEvent
from server.services import inbound, instances

FIXTURES = Path(__file__).parent / "fixtures" / "gateways"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "gateways"


def _messages() -> list[tuple[str, Path]]:
    """(provider, file) of every fixture that holds a customer message we store."""
    found = []
    files = [(p.parent.name, p) for p in sorted(FIXTURES.glob("*/*.json"))]
    files += [(p.name.split("-")[0], p) for p in sorted(SHARED.glob("*.json"))
              if "request" not in p.name]
    for provider, path in files:
        events = adapter_for(provider).parse(path.read_bytes(), None)
        if any(isinstance(e, InboundMessage) and not e.from_me and not e.is_group
               for e in events):
            found.append((provider, path))
    return found


MESSAGES = _messages()


def test_the_fixtures_cover_every_gateway() -> None:
    assert {p for p, _ in MESSAGES} == {"evolution", "waha", "cloud"}
    assert len(MESSAGES) >= 40


@pytest.mark.parametrize(("provider", "path"), MESSAGES,
                         ids=[f"{p}-{f.stem}" for p, f in MESSAGES])
def test_ten_concurrent_deliveries_store_one(sessions: sessionmaker[Session], tmp_path: Path,
                                             provider: str, path: Path) -> None:
    inst = instances.ensure_simulator(sessions, "loja", "http://127.0.0.1:9")
    rules = inbound.Rules(timedelta(days=36500), tmp_path, 16_000_000)  # none is stale
    events = adapter_for(provider).parse(path.read_bytes(), None)
    messages = [e for e in events if isinstance(e, InboundMessage) and not e.is_group]
    ids = {e.provider_message_id for e in messages}  # from the phone too: kept as the agent's
    customers = {e.provider_message_id for e in messages if not e.from_me}
    with ThreadPoolExecutor(10) as pool:
        outs = list(pool.map(lambda _: inbound.handle(sessions, inst, events, rules), range(10)))
    assert sum(o.stored for o in outs) == len(ids)
    assert sum(o.duplicates for o in outs) == 9 * len(ids)
    with sessions() as s:
        rows = s.execute(select(Message.provider_message_id, func.count()).where(
            Message.instance_id == inst.id).group_by(Message.provider_message_id)).all()
        assert dict(rows) == {i: 1 for i in ids}
        received = s.scalar(select(func.count()).select_from(MessageEvent).where(
            MessageEvent.event == "received"))
        assert received == len(customers)  # the journey shows the 9 others as duplicates
