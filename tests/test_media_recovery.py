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


def test_a_file_gone_from_the_store_fails_its_send_with_the_reason(sessions,
                                                                   tmp_path: Path) -> None:
    import httpx

    from server.schema import Outbox
    from server.services import media, outbox, sending

    inst = instances.ensure_simulator(sessions, "loja", "http://127.0.0.1:9")
    rules = inbound.Rules(timedelta(minutes=10), tmp_path, 1_000_000)
    conv_id, _ = inbound.store_inbound(sessions, inst, _photo("p9"), rules)
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    box = sending.agent_message(sessions, conv_id, text="segue a foto",
                                file=(png, "image/png", "foto.png"), data_dir=tmp_path,
                                max_bytes=1_000_000)
    with sessions() as s:
        sha = s.get_one(Message, s.get_one(Outbox, box).message_id).media["sha256"]
    media.path_of(tmp_path, sha).unlink()  # a disk restored from an older backup
    with httpx.Client() as http:
        assert outbox.deliver(http, sessions, box, max_attempts=3, data_dir=tmp_path) == "failed"
    with sessions() as s:
        assert "No such file" in (s.get_one(Outbox, box).last_error or "")
