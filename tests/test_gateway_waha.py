"""The WAHA adapter against WAHA's real wire format: its webhooks (fixtures taken from WAHA's
source and documentation) and its HTTP API (a local fake WAHA, real HTTP, nothing patched)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_bridge import (
    AuthError,
    ConnectionUpdate,
    Ignored,
    InboundMessage,
    InstanceConfig,
    Media,
    Outgoing,
    PayloadError,
    SendError,
    StatusUpdate,
    waha,
)
from tests.gateways import fake_waha
from tests.gateways.fake_waha import FakeWaha
from tests.gateways.fakehttp import Reply

FIXTURES = Path(__file__).parent / "fixtures" / "gateways" / "waha"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "gateways"
SECRET = "hmac-secret"
INST = InstanceConfig(name="loja", webhook_secret=SECRET)
PHONE, LID = "5511987654321", "123456789012345@lid"


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def events(body: bytes, inst: InstanceConfig = INST) -> list[Any]:
    waha.verify(body, fake_waha.headers(body, SECRET), {}, inst)
    return waha.parse(body, inst)


# -- webhooks ---------------------------------------------------------------------------------

# fixture -> (event class, the fields that event must have)
EXPECTED: dict[str, tuple[type, dict[str, Any]]] = {
    "message-text-webjs": (InboundMessage, dict(
        provider_message_id="false_5511987654321@c.us_3EB0B430B6F8F1D0E2A1C4",
        sender="5511987654321@c.us", phone=PHONE, lid=None, sender_name="Maria",
        text="Oi, vocês abrem sábado?", type="text", from_me=False, is_group=False,
        timestamp=datetime.fromtimestamp(1764140000, UTC))),
    "message-image-noweb": (InboundMessage, dict(
        type="image", text="Olha a nota fiscal", phone=PHONE, sender_name="Maria",
        media=Media(mime="image/jpeg", ref="http://localhost:3000/api/files/default/"
                    "false_5511987654321@c.us_3EB0C767D26A1D5F6F2A.jpeg",
                    url="http://localhost:3000/api/files/default/"
                    "false_5511987654321@c.us_3EB0C767D26A1D5F6F2A.jpeg", size=48213))),
    "message-voice-gows": (InboundMessage, dict(type="voice", text="", phone=PHONE)),
    "message-document-webjs": (InboundMessage, dict(type="document", text="Segue o contrato")),
    "message-location-webjs": (InboundMessage, dict(
        type="location", media=None,
        text="MASP Av. Paulista, 1578 - Bela Vista, São Paulo (-23.561414, -46.655881)")),
    "message-contact-noweb": (InboundMessage, dict(
        type="contact", text="João Souza +55 11 91234-5678")),
    "message-lid-noweb": (InboundMessage, dict(
        sender=LID, lid=LID, phone=PHONE, text="Quero remarcar")),
    "message-lid-gows": (InboundMessage, dict(sender=LID, lid=LID, phone=PHONE)),
    "message-group-noweb": (InboundMessage, dict(
        sender="120363025246125486@g.us", is_group=True, phone=PHONE, text="Bom dia, grupo")),
    "message-any-fromme-webjs": (InboundMessage, dict(
        provider_message_id="true_5511987654321@c.us_3EB0E5A6B7C8D9E0F1A2B3",
        sender="5511987654321@c.us", phone=PHONE, from_me=True, sender_name=None)),
    "message-reaction": (InboundMessage, dict(
        type="reaction", text="🙏", phone="79111111",
        reply_to="true_79111111@c.us_11111111111111111111111111111111")),
    "message-button-reply-noweb": (InboundMessage, dict(type="button",
                                                        text="Falar com atendente")),
    "message-list-reply-gows": (InboundMessage, dict(type="interactive",
                                                     text="Segunda via do boleto")),
    "message-ephemeral-noweb": (InboundMessage, dict(type="text", text="Some em 24h")),
    "message-poll-noweb": (InboundMessage, dict(type="unsupported", text="")),
    "message-undecrypted-group-noweb": (Ignored, dict(unknown=False)),
    "message-no-content-noweb": (Ignored, dict(unknown=False)),
    "message-ack-read": (StatusUpdate, dict(
        provider_message_id="true_5511987654321@c.us_3EB0E5A6B7C8D9E0F1A2B3", status="read",
        error=None)),
    "message-ack-delivered": (StatusUpdate, dict(status="delivered")),
    "message-ack-played": (StatusUpdate, dict(status="played")),
    "message-ack-error": (StatusUpdate, dict(status="failed", error="ERROR", error_code="-1")),
    "message-ack-pending": (Ignored, dict(unknown=False)),
    "message-revoked": (StatusUpdate, dict(
        provider_message_id="false_5511987654321@c.us_3EB0C767D26A1D5F6F2A", status="deleted")),
    "message-edited": (Ignored, dict(unknown=False)),
    "message-status-broadcast": (Ignored, dict(unknown=False)),
    "session-status-working": (ConnectionUpdate, dict(state="connected", detail="WORKING")),
    "session-status-scan-qr": (ConnectionUpdate, dict(state="pairing", detail="SCAN_QR_CODE")),
    "session-status-failed": (ConnectionUpdate, dict(state="disconnected", detail="FAILED")),
    "session-status-starting": (ConnectionUpdate, dict(state="disconnected",
                                                       detail="STARTING")),
    "presence-update": (Ignored, dict(unknown=False)),
    "chat-archive": (Ignored, dict(unknown=False)),
    "call-received": (Ignored, dict(unknown=False)),
    "poll-vote": (Ignored, dict(unknown=False)),
    "group-v2-join": (Ignored, dict(unknown=False)),
    "label-upsert": (Ignored, dict(unknown=False)),
    "engine-event": (Ignored, dict(unknown=False)),
}


def test_every_fixture_has_an_expectation() -> None:
    assert {p.stem for p in FIXTURES.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_to_the_right_event(name: str) -> None:
    kind, fields = EXPECTED[name]
    (event,) = events(fixture(name))
    assert isinstance(event, kind), event
    for attr, value in fields.items():
        assert getattr(event, attr) == value, attr


def test_an_unknown_message_type_keeps_the_message_for_a_person() -> None:
    (msg,) = events(fixture("message-poll-noweb"))
    assert msg.type == "unsupported"
    assert msg.raw["_data"]["message"]["pollCreationMessageV3"]["name"] == "Qual dia?"


# WhatsApp Web's message still waiting for its decryption, as WAHA's chat history gives it (its
# webhook sends it as "message.waiting"); the decrypted one comes as "message" under this id.
WEBJS_WAITING = {
    "id": "false_5511987654321@c.us_3EB0F1E2D3C4B5A69788", "timestamp": 1764140400,
    "from": "5511987654321@c.us", "fromMe": False, "source": "app", "to": "5511900000000@c.us",
    "body": "", "hasMedia": False, "media": None, "ack": 1, "ackName": "SERVER",
    "vCards": [], "replyTo": None,
    "_data": {"id": {"fromMe": False, "remote": "5511987654321@c.us",
                     "id": "3EB0F1E2D3C4B5A69788",
                     "_serialized": "false_5511987654321@c.us_3EB0F1E2D3C4B5A69788"},
              "type": "ciphertext", "t": 1764140400, "notifyName": "Maria",
              "from": "5511987654321@c.us", "to": "5511900000000@c.us", "ack": 1,
              "isNewMsg": True}}


@pytest.mark.parametrize("name, bare", [
    ("message-undecrypted-group-noweb", "3EB0D5E6F7A8B9C0D1E2"),
    ("message-no-content-noweb", "3EB0C431C26A1916E07A"),
    ("webjs-waiting", "3EB0F1E2D3C4B5A69788"),
])
def test_a_message_not_decrypted_yet_is_not_taken_for_one(name: str, bare: str) -> None:
    """WhatsApp's "Aguardando mensagem": nothing to read yet, the same id coming again with the
    text after the phone's retry. Stored (as "system", or an empty "text"), it would take the id
    and the real text be dropped as its copy."""
    body = (json.dumps(fake_waha.envelope("message", WEBJS_WAITING, engine="WEBJS")).encode()
            if name == "webjs-waiting" else fixture(name))
    (ev,) = events(body)
    assert isinstance(ev, Ignored) and not ev.unknown and bare in ev.reason, ev


def test_a_message_with_something_to_read_is_kept_though_a_part_failed() -> None:
    """Baileys marks a message CIPHERTEXT when any part failed; one whose text came through
    is the customer's message all the same."""
    payload = json.loads(fixture("message-undecrypted-group-noweb"))["payload"]
    payload["_data"]["message"]["conversation"] = "Bom dia"
    payload["body"] = "Bom dia"
    (msg,) = events(json.dumps(fake_waha.envelope("message", payload)).encode())
    assert isinstance(msg, InboundMessage) and (msg.type, msg.text) == ("text", "Bom dia")


def test_media_without_engine_data_is_typed_by_its_mime() -> None:
    body = fake_waha.message("3EB0AA", PHONE, "legenda", hasMedia=True, _data={},
                             media={"url": "http://x/api/files/a.mp4", "mimetype": "video/mp4"})
    (msg,) = events(body)
    assert (msg.type, msg.text, msg.media.mime) == ("video", "legenda", "video/mp4")


def test_shared_fixture_for_waha_parses() -> None:
    path = SHARED / "waha-message.json"
    if not path.exists():
        pytest.skip("../shared fixtures are not checked out here")
    (msg,) = events(path.read_bytes())
    assert isinstance(msg, InboundMessage)
    assert (msg.provider_message_id, msg.sender, msg.phone, msg.text, msg.from_me) == (
        "false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA", "11111111111@c.us", "11111111111", "1",
        False)
    assert msg.timestamp == datetime.fromtimestamp(1666943582, UTC)


def test_shared_send_fixture_is_what_send_text_puts_on_the_wire(waha_: FakeWaha,
                                                                 client: httpx.Client) -> None:
    path = SHARED / "waha-send-text-request.json"
    if not path.exists():
        pytest.skip("../shared fixtures are not checked out here")
    expected = json.loads(path.read_text())
    waha.send(client, instance(waha_), expected["chatId"], Outgoing(text=expected["text"]))
    assert waha_.sent[0].body == expected


def test_wahas_documented_hmac_example_verifies() -> None:
    """The example in WAHA's webhook documentation, byte for byte."""
    body = b'{"event":"message","session":"default","engine":"WEBJS"}'
    header = ("208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8097c462b2b17a6ce"
              "93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89")
    waha.verify(body, {"X-Webhook-Hmac": header, "X-Webhook-Hmac-Algorithm": "sha512"}, {},
                InstanceConfig(name="x", webhook_secret="my-secret-key"))


@pytest.mark.parametrize("headers", [
    {},  # missing
    {"X-Webhook-Hmac": "0" * 128},  # wrong
    fake_waha.headers(fixture("message-text-webjs"), "another-secret"),  # another key
    {**fake_waha.headers(fixture("message-text-webjs"), SECRET),
     "X-Webhook-Hmac-Algorithm": "sha1"},  # a weaker algorithm claimed
])
def test_verify_refuses_a_missing_or_wrong_signature(headers: dict[str, str]) -> None:
    with pytest.raises(AuthError):
        waha.verify(fixture("message-text-webjs"), headers, {}, INST)


def test_a_hostile_header_is_refused_not_a_crash() -> None:
    with pytest.raises(AuthError):
        waha.verify(b"{}", {"X-Webhook-Hmac": "é" * 128}, {}, INST)


def test_verify_checks_the_raw_body() -> None:
    body = fixture("message-text-webjs")
    signed = fake_waha.headers(body, SECRET)
    with pytest.raises(AuthError):  # same JSON, other bytes
        waha.verify(json.dumps(json.loads(body)).encode(), signed, {}, INST)


def test_a_body_for_another_session_is_refused() -> None:
    body = fake_waha.message("3EB0AB", PHONE, "oi", session="other")
    with pytest.raises(AuthError, match="other"):
        events(body)
    mine = InstanceConfig(name="loja", webhook_secret=SECRET, options={"session": "other"})
    assert isinstance(events(body, mine)[0], InboundMessage)
    assert isinstance(waha.parse(body, None)[0], InboundMessage)  # the CLI: no instance


def test_an_unknown_event_is_kept_as_unknown() -> None:
    body = json.dumps(fake_waha.envelope("message.future", {"id": "x"})).encode()
    (event,) = events(body)
    assert isinstance(event, Ignored) and event.unknown


@pytest.mark.parametrize("body, match", [
    (b"{not json", "JSON"),
    (b"[1, 2]", "object"),
    (json.dumps({"session": "default", "payload": {}}).encode(), "event"),
    (json.dumps(fake_waha.envelope("message", {"from": "5511987654321@c.us"})).encode(), "id"),
    (fake_waha.message("3EB0AB", PHONE, "oi", timestamp="ontem"), "timestamp"),
    (fake_waha.message("x" * 200, PHONE, "oi"), "provider_message_id"),
])
def test_malformed_bodies_raise_payload_error(body: bytes, match: str) -> None:
    with pytest.raises(PayloadError, match=match):
        events(body)


@pytest.mark.parametrize("author, quoted", [
    (f"{PHONE}@c.us", f"false_{PHONE}@c.us_3EB0Q1"),  # the customer quoted themselves
    ("5511900000000@c.us", f"true_{PHONE}@c.us_3EB0Q1"),  # the customer quoted us
])
def test_a_quote_points_at_the_stored_id(author: str, quoted: str) -> None:
    body = fake_waha.message("3EB0AB", PHONE, "isso aqui", replyTo={
        "id": "3EB0Q1", "participant": author, "body": "Abrimos sábado"})
    (msg,) = events(body)
    assert msg.reply_to == quoted


def test_milliseconds_where_seconds_belong_still_give_the_right_time() -> None:
    (msg,) = events(fake_waha.message("3EB0AB", PHONE, "oi", timestamp=1764140000123))
    assert msg.timestamp == datetime.fromtimestamp(1764140000.123, UTC)


def test_builders_speak_what_the_adapter_reads() -> None:
    (st,) = events(fake_waha.status("true_5511987654321@c.us_3EB0AA", 3))
    assert isinstance(st, StatusUpdate) and st.status == "read"
    (conn,) = events(fake_waha.connection("SCAN_QR_CODE"))
    assert isinstance(conn, ConnectionUpdate) and conn.state == "pairing"
    (react,) = events(fake_waha.reaction("3EB0AC", PHONE, "", "true_x@c.us_3EB0AA"))
    assert (react.type, react.text, react.reply_to) == ("reaction", "", "true_x@c.us_3EB0AA")


# -- the API, against the fake ------------------------------------------------------------------

@pytest.fixture
def waha_() -> Iterator[FakeWaha]:
    with FakeWaha() as fake:
        yield fake


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c


def instance(fake: FakeWaha, **kw: Any) -> InstanceConfig:
    return InstanceConfig(name="loja", webhook_secret=SECRET, api_url=fake.url + "/",
                          api_key=kw.pop("api_key", fake.api_key), **kw)


@pytest.mark.parametrize("engine", ["NOWEB", "WEBJS"])
def test_send_text_puts_wahas_body_and_key_on_the_wire(waha_: FakeWaha, client: httpx.Client,
                                                       engine: str) -> None:
    waha_.engine = engine
    mid = waha.send(client, instance(waha_), "+55 11 98765-4321", Outgoing(text="olá"),
                    ref="out-1")
    (sent,) = waha_.sent
    assert sent.body == {"session": "default", "chatId": "5511987654321@c.us", "text": "olá"}
    assert sent.headers["x-api-key"] == "waha-key"
    assert mid == sent.id and mid.startswith("true_5511987654321@c.us_")


def test_send_to_a_lid_or_group_keeps_the_chat_id(waha_: FakeWaha, client: httpx.Client) -> None:
    waha.send(client, instance(waha_), LID, Outgoing(text="a"))
    waha.send(client, instance(waha_), "120363025246125486@g.us", Outgoing(text="b"))
    waha.send(client, instance(waha_), f"{PHONE}@s.whatsapp.net", Outgoing(text="c"))
    assert [s.to for s in waha_.sent] == [LID, "120363025246125486@g.us", f"{PHONE}@c.us"]


def test_send_image_document_and_voice(waha_: FakeWaha, client: httpx.Client) -> None:
    inst = instance(waha_)
    jpeg, pdf, ogg, mp3 = b"\xff\xd8jpeg", b"%PDF-1.7", b"OggS\x00", b"ID3mp3"
    waha.send(client, inst, PHONE, Outgoing(kind="image", data=jpeg, mime="image/jpeg",
                                            filename="nota.jpg", text="sua nota"))
    waha.send(client, inst, PHONE, Outgoing(kind="document", data=pdf, mime="application/pdf",
                                            filename="boleto.pdf"))
    waha.send(client, inst, PHONE, Outgoing(kind="audio", data=ogg,
                                            mime="audio/ogg; codecs=opus"))
    waha.send(client, inst, PHONE, Outgoing(kind="audio", data=mp3, mime="audio/mpeg"))
    image, doc, voice, mp3_voice = waha_.sent
    assert (image.kind, image.caption, image.mime, image.filename, image.data) == (
        "image", "sua nota", "image/jpeg", "nota.jpg", jpeg)
    assert image.body["file"] == {"mimetype": "image/jpeg", "filename": "nota.jpg",
                                  "data": base64.b64encode(jpeg).decode()}
    assert (doc.kind, doc.filename, doc.data, doc.caption) == ("document", "boleto.pdf", pdf,
                                                               None)
    assert (voice.kind, voice.data, voice.convert) == ("audio", ogg, False)
    assert (mp3_voice.data, mp3_voice.convert) == (mp3, True)  # WAHA converts it to OGG/Opus


def test_a_template_or_a_bad_address_is_refused_without_a_call(waha_: FakeWaha,
                                                               client: httpx.Client) -> None:
    inst = instance(waha_)
    with pytest.raises(SendError) as err:
        waha.send(client, inst, PHONE, Outgoing(kind="template", template={"name": "t"}))
    assert not err.value.retryable
    with pytest.raises(SendError) as err:
        waha.send(client, inst, "maria", Outgoing(text="x"))
    assert not err.value.retryable
    assert waha_.http.requests == []


@pytest.mark.parametrize("fault, retryable, retry_after", [
    (Reply(401, {"message": "Unauthorized", "statusCode": 401}), False, None),
    (Reply(404, {"message": "not found", "statusCode": 404}), False, None),
    (Reply(400, {"statusCode": 400, "message": ["chatId"], "error": "Bad Request"}), False,
     None),
    (Reply(429, {"message": "slow down"}, {"Retry-After": "7"}), True, 7.0),
    (Reply(500, {"statusCode": 500, "exception": {"message": "boom"}}), True, None),
])
def test_send_errors_say_whether_to_retry(waha_: FakeWaha, client: httpx.Client, fault: Reply,
                                          retryable: bool, retry_after: float | None) -> None:
    waha_.http.fail(fault)
    with pytest.raises(SendError) as err:
        waha.send(client, instance(waha_), PHONE, Outgoing(text="x"))
    assert (err.value.retryable, err.value.retry_after) == (retryable, retry_after)
    assert err.value.code == str(fault.status)
    assert "waha-key" not in str(err.value)


def test_a_wrong_key_is_refused_by_waha_and_not_retried(waha_: FakeWaha,
                                                        client: httpx.Client) -> None:
    with pytest.raises(SendError) as err:
        waha.send(client, instance(waha_, api_key="wrong"), PHONE, Outgoing(text="x"))
    assert (err.value.code, err.value.retryable) == ("401", False)
    assert "wrong" not in str(err.value) and waha_.sent == []


def test_a_timeout_is_retryable(waha_: FakeWaha) -> None:
    waha_.http.fail(Reply(200, {"id": "late"}, delay=1.5))
    with httpx.Client(timeout=0.5) as slow, pytest.raises(SendError) as err:
        waha.send(slow, instance(waha_), PHONE, Outgoing(text="x"))
    assert err.value.retryable


@pytest.mark.parametrize("answer", [Reply(200, b"<html>ok</html>"), Reply(201, {"ok": True})])
def test_an_answer_without_json_or_id_is_an_error(waha_: FakeWaha, client: httpx.Client,
                                                  answer: Reply) -> None:
    waha_.http.fail(answer)
    with pytest.raises(SendError):
        waha.send(client, instance(waha_), PHONE, Outgoing(text="x"))


def test_connection_states(waha_: FakeWaha, client: httpx.Client) -> None:
    inst = instance(waha_)
    assert waha.connection(client, inst).state == "connected"
    waha_.status = "FAILED"
    conn = waha.connection(client, inst)
    assert (conn.state, conn.detail) == ("disconnected", "FAILED")
    waha_.status = "SCAN_QR_CODE"
    conn = waha.connection(client, inst)
    assert (conn.state, conn.qr, conn.detail) == ("pairing", waha_.qr_value, "SCAN_QR_CODE")


def test_connection_when_waha_refuses_or_is_gone(waha_: FakeWaha, client: httpx.Client) -> None:
    conn = waha.connection(client, instance(waha_, api_key="wrong"))
    assert (conn.state, conn.detail) == ("disconnected", "credentials refused")
    conn = waha.connection(client, instance(waha_, options={"session": "nope"}))
    assert conn.state == "disconnected" and "nope" in (conn.detail or "")
    waha_.http.fail(500)
    assert waha.connection(client, instance(waha_)).state == "disconnected"
    gone = InstanceConfig(name="x", webhook_secret="s", api_url="http://127.0.0.1:9")
    conn = waha.connection(client, gone)
    assert conn.state == "disconnected" and "unreachable" in (conn.detail or "")


def test_qr(waha_: FakeWaha, client: httpx.Client) -> None:
    assert waha.qr(client, instance(waha_)) is None  # connected: nothing to scan
    waha_.status = "SCAN_QR_CODE"
    assert waha.qr(client, instance(waha_)) == waha_.qr_value
    assert waha_.http.requests[-1].query == {"format": "raw"}
    waha_.http.fail(Reply(200, {"mimetype": "image/png", "data": "iVBORw0KGgo="}))
    assert waha.qr(client, instance(waha_)) == "data:image/png;base64,iVBORw0KGgo="


def test_download_fetches_from_waha_with_the_key(waha_: FakeWaha, client: httpx.Client) -> None:
    url = waha_.file_url("false_x@c.us_3EB0.jpeg", b"\xff\xd8 jpeg bytes", "image/jpeg")
    data, mime = waha.download(client, instance(waha_), Media(mime="image/jpeg", ref=url,
                                                               url=url), max_bytes=1000)
    assert (data, mime) == (b"\xff\xd8 jpeg bytes", "image/jpeg")
    assert waha_.http.requests[-1].headers["x-api-key"] == "waha-key"
    with pytest.raises(ValueError):
        waha.download(client, instance(waha_), Media(mime="image/jpeg", url=url), max_bytes=5)


def test_download_inline_data_checks_the_decoded_size(waha_: FakeWaha,
                                                      client: httpx.Client) -> None:
    media = Media(mime="application/pdf", data=base64.b64encode(b"%PDF" * 10).decode())
    assert waha.download(client, instance(waha_), media, max_bytes=40) == (
        b"%PDF" * 10, "application/pdf")
    with pytest.raises(ValueError):
        waha.download(client, instance(waha_), media, max_bytes=39)
    assert waha_.http.requests == []


def test_download_never_sends_the_key_to_another_host(waha_: FakeWaha,
                                                      client: httpx.Client) -> None:
    with FakeWaha(api_key=None) as elsewhere:
        url = elsewhere.file_url("x.jpeg", b"jpeg", "image/jpeg")
        for foreign in (url, url.replace("http://", "https://"), "http://[::1",
                        waha_.url.replace("127.0.0.1", "localhost") + "/api/files/x"):
            with pytest.raises(SendError) as err:
                waha.download(client, instance(waha_), Media(mime=None, url=foreign),
                              max_bytes=1000)
            assert not err.value.retryable
        assert elsewhere.http.requests == [] and waha_.http.requests == []


def test_download_of_a_file_waha_did_not_keep(waha_: FakeWaha, client: httpx.Client) -> None:
    with pytest.raises(SendError) as err:  # hasMedia but no media.url
        waha.download(client, instance(waha_), Media(mime="image/jpeg"), max_bytes=10)
    assert not err.value.retryable
    with pytest.raises(SendError) as err:  # WAHA deleted it
        waha.download(client, instance(waha_), Media(mime=None, url=waha_.url + "/api/files/g"),
                      max_bytes=10)
    assert err.value.code == "404"


def test_recent_reads_the_history_with_the_webhook_parser(waha_: FakeWaha,
                                                          client: httpx.Client) -> None:
    chat = f"{PHONE}@c.us"
    waha_.keep(chat,
               fake_waha.message_payload("3EB0A1", PHONE, "primeira", timestamp=1764140000),
               fake_waha.message_payload("3EB0A2", PHONE, "resposta", from_me=True,
                                         timestamp=1764140005),
               fake_waha.message_payload("3EB0A3", PHONE, "última", timestamp=1764140008),
               json.loads(fixture("message-image-noweb"))["payload"])
    found = waha.recent(client, instance(waha_), PHONE, limit=3)
    assert [m.text for m in found] == ["Olha a nota fiscal", "última", "resposta"]
    assert all(isinstance(m, InboundMessage) and m.phone == PHONE for m in found)
    assert [m.from_me for m in found] == [False, False, True]
    assert found[0].media is not None and found[0].media.mime == "image/jpeg"
    req = waha_.http.requests[-1]
    assert req.path == f"/api/default/chats/{chat}/messages"
    assert req.query == {"limit": "3", "downloadMedia": "false"}


def test_recent_leaves_out_a_message_still_waiting_for_decryption(
        waha_: FakeWaha, client: httpx.Client) -> None:
    """Reconciliation stores what ``recent`` finds: a placeholder found there would take the id
    the decrypted text's webhook brings, and that text would be dropped as its copy."""
    chat = f"{PHONE}@c.us"
    waha_.keep(chat, fake_waha.message_payload("3EB0A1", PHONE, "ok", timestamp=1764140000),
               WEBJS_WAITING)
    found = waha.recent(client, instance(waha_), chat, limit=10)
    assert [m.provider_message_id for m in found] == [f"false_{chat}_3EB0A1"]


def test_recent_skips_what_is_no_customer_message(waha_: FakeWaha, client: httpx.Client) -> None:
    chat = f"{PHONE}@c.us"
    waha_.keep(chat, {"timestamp": 1}, fake_waha.message_payload("3EB0A1", PHONE, "ok"))
    assert [m.text for m in waha.recent(client, instance(waha_), chat, limit=10)] == ["ok"]
    waha_.http.fail(Reply(200, {"not": "a list"}))
    with pytest.raises(SendError):
        waha.recent(client, instance(waha_), chat, limit=10)
