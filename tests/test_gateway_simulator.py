"""The simulator's wire format: authenticity and normalization."""

from __future__ import annotations

import json

import pytest

from gateway_bridge import AuthError, InboundMessage, InstanceConfig, PayloadError, StatusUpdate
from gateway_bridge import simulator as wire

INST = InstanceConfig(name="demo", webhook_secret="s3cret")



def _parse(body: bytes, headers: dict[str, str], inst: InstanceConfig) -> list:  # type: ignore[type-arg]
    wire.verify(body, headers, {}, inst)
    return wire.parse(body, inst)

def _headers(body: bytes, secret: str = "s3cret") -> dict[str, str]:
    return {wire.SIGNATURE_HEADER.lower(): wire.sign(body, secret)}


def test_message_and_status_are_normalized() -> None:
    body = json.dumps({"event": "message", "id": "m1", "from": "+55 11 98765-4321",
                       "name": "Zé", "text": "ação", "timestamp": 1764140000}).encode()
    (msg,) = _parse(body, _headers(body), INST)
    assert isinstance(msg, InboundMessage)
    assert (msg.provider_message_id, msg.phone, msg.text, msg.sender_name) == (
        "m1", "5511987654321", "ação", "Zé")
    body = json.dumps({"event": "status", "id": "m2", "status": "read"}).encode()
    (st,) = _parse(body, _headers(body), INST)
    assert isinstance(st, StatusUpdate) and st.status == "read"


def test_signature_is_checked_before_anything_else() -> None:
    body = b'{"event": "message"}'
    with pytest.raises(AuthError):
        _parse(body, _headers(body, "other"), INST)
    with pytest.raises(AuthError):
        _parse(body, {}, INST)


@pytest.mark.parametrize("payload, field", [
    ({"event": "message", "id": "", "from": "5511987654321"}, "'id'"),
    ({"event": "message", "id": "a", "from": "5511987654321", "text": 5}, "'text'"),
    ({"event": "message", "id": "a", "from": "5511987654321", "timestamp": "ontem"},
     "'timestamp'"),
    ({"event": "status", "id": "a", "status": "lost"}, "'status'"),
    # Signed, so from the gateway, yet no store column holds them: once each was a 500.
    ({"event": "message", "id": "a", "from": "5511987654321", "timestamp": 1764140000000},
     "'timestamp'"),  # milliseconds, not seconds
    ({"event": "message", "id": "a", "from": "5511987654321", "timestamp": float("nan")},
     "'timestamp'"),
    ({"event": "message", "id": "x" * 129, "from": "5511987654321"}, "provider_message_id"),
    ({"event": "status", "id": "x" * 129, "status": "read"}, "provider_message_id"),
    ({"event": "message", "id": "a\u0000", "from": "5511987654321"}, "NUL"),
])
def test_malformed_fields_are_named(payload: dict, field: str) -> None:
    body = json.dumps(payload).encode()
    with pytest.raises(PayloadError, match=field):
        _parse(body, _headers(body), INST)


def test_a_body_nested_too_deeply_is_malformed_not_a_crash() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(PayloadError, match="nested"):
        _parse(body, _headers(body), INST)


def test_a_huge_display_name_is_cut_and_the_message_kept() -> None:
    body = json.dumps({"event": "message", "id": "m1", "from": "5511987654321",
                       "name": "Zé" * 1000, "text": "oi"}).encode()
    (msg,) = _parse(body, _headers(body), INST)
    assert isinstance(msg, InboundMessage)
    assert msg.text == "oi" and msg.sender_name == ("Zé" * 100)


def test_text_no_store_keeps_is_made_storable_and_the_message_kept() -> None:
    body = (b'{"event": "message", "id": "m1", "from": "5511987654321", '
            b'"text": "oi \\ud800\\u0000!"}')
    (msg,) = _parse(body, _headers(body), INST)
    assert isinstance(msg, InboundMessage) and msg.text == "oi ?!"
