"""``atende gateway parse``: what support staff read in a saved webhook body."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ATENDE, ROOT

SHARED = ROOT.parent / "shared" / "fixtures" / "gateways"
OURS = ROOT / "tests" / "fixtures" / "gateways"


def _parse(provider: str, *files: Path) -> tuple[int, list[dict]]:  # type: ignore[type-arg]
    out = subprocess.run([*ATENDE, "gateway", "parse", provider, *map(str, files), "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    return out.returncode, json.loads(out.stdout)


@pytest.mark.parametrize(("provider", "fixture", "phone", "text"), [
    ("evolution", "evolution-messages-upsert.json", "5511999990000", "1"),
    ("waha", "waha-message.json", "11111111111", "1"),
    ("cloud", "cloud-inbound-text.json", "16505551234", "1"),
])
def test_a_shared_fixture_reads_as_one_message(provider: str, fixture: str, phone: str,
                                               text: str) -> None:
    code, out = _parse(provider, SHARED / fixture)
    assert code == 0
    (result,) = out
    assert result["file"].endswith(fixture)
    (msg,) = result["events"]
    assert msg["kind"] == "message" and msg["type"] == "text" and msg["text"] == text
    assert msg["from_phone"] == phone and msg["from_me"] is False and msg["media"] is None
    assert isinstance(msg["timestamp"], int) and msg["id"]


def test_statuses_media_connection_and_ignored_events() -> None:
    files = [SHARED / "cloud-status-delivered.json", OURS / "cloud" / "status-failed.json",
             OURS / "cloud" / "image.json", OURS / "cloud" / "account-update.json"]
    code, out = _parse("cloud", *files)
    assert code == 0
    delivered, failed, image, ignored = (r["events"] for r in out)
    assert delivered == [{"kind": "status", "id": "wamid.HBgL...", "status": "delivered",
                          "error": None}]
    assert failed[0]["status"] == "failed" and failed[0]["error"]["code"]
    assert image[0]["type"] == "image" and image[0]["media"]["mime"].startswith("image/")
    assert ignored[0]["kind"] == "ignored" and ignored[0]["reason"]
    code, out = _parse("evolution", OURS / "evolution" / "connection-open.json",
                       OURS / "evolution" / "qrcode-updated.json")
    assert [e["state"] for r in out for e in r["events"]] == ["connected", "pairing"]
    assert out[1]["events"][0]["qr"]


def test_an_unreadable_file_is_named_with_its_reason_and_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"event": "messages.upsert",')
    code, out = _parse("evolution", SHARED / "evolution-messages-upsert.json", broken,
                       tmp_path / "missing.json")
    assert code == 2
    assert "events" in out[0]
    assert out[1]["file"] == str(broken) and "not valid JSON" in out[1]["error"]
    assert "error" in out[2]


def test_unknown_provider_is_refused() -> None:
    out = subprocess.run([*ATENDE, "gateway", "parse", "telegram",
                          str(SHARED / "waha-message.json")],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "unknown provider" in out.stdout + out.stderr
