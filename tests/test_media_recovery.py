"""A file whose download task was lost with its worker is found again and fetched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from gateway_bridge import InboundMessage, Media
from server.schema import Message
from server.services import inbound, instances, recovery


def _photo(pid: str) -> InboundMessage:
    return InboundMessage(pid, "5511987650000", "5511987650000", None, "Ana", "",
                          datetime.now(UTC), type="image",
                          media=Media(mime="image/png", ref=f"media-{pid}"))


def test_a_file_left_waiting_is_found_again(sessions, tmp_path: Path) -> None:
    inst = instances.ensure_simulator(sessions, "loja", "http://127.0.0.1:9")
    rules = inbound.Rules(timedelta(minutes=10), tmp_path, 1_000_000)
    out = inbound.handle(sessions, inst, [_photo("p1"), _photo("p2")], rules)
    assert len(out.fetch) == 2  # both files are to be downloaded
    assert recovery.unfetched(sessions, older_than=timedelta(minutes=2)) == []  # tasks queued
    with sessions.begin() as s:  # two minutes on, one was fetched meanwhile, one task lost
        s.execute(update(Message).values(created_at=datetime.now(UTC) - timedelta(minutes=3)))
        kept = s.get_one(Message, out.fetch[0])
        kept.media = {**(kept.media or {}), "state": "stored", "sha256": "0" * 64}
    assert recovery.unfetched(sessions, older_than=timedelta(minutes=2)) == [out.fetch[1]]
