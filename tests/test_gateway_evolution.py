"""Evolution API v2: its webhooks read right, its token checked, its API called as it wants,
against a fake Evolution over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_bridge import evolution as evo
from gateway_bridge.events import (
    AuthError,
    ConnectionUpdate,
    Ignored,
    InboundMessage,
    InstanceConfig,
    Media,
    PayloadError,
    SendError,
    StatusUpdate,
)
from gateway_bridge.http import Outgoing
from tests.gateways import fake_evolution as fe
from tests.gateways.fakehttp import FakeHTTP, Reply

FIXTURES = Path(__file__).parent / "fixtures" / "gateways" / "evolution"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "gateways"
SECRET = "tok-123"
INST = InstanceConfig(name="sales-01", webhook_secret=SECRET)
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def one(body: bytes, inst: InstanceConfig | None = INST) -> Any:
    events = evo.parse(body, inst)
    assert len(events) == 1, events
    return events[0]


@pytest.fixture()
def gw() -> Iterator[fe.FakeEvolution]:
    with FakeHTTP() as http:
        yield fe.FakeEvolution(http)


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c


def inst_for(gw: fe.FakeEvolution, **kw: Any) -> InstanceConfig:
    return InstanceConfig(name="sales-01", webhook_secret=SECRET, api_url=gw.url,
                          api_key=fe.API_KEY, **kw)


# -- webhooks ------------------------------------------------------------------------------------

MESSAGES: dict[str, dict[str, Any]] = {
    "text": dict(type="text", text="Quero falar com vendas", sender="5511999990000",
                 phone="5511999990000", sender_name="Maria", provider_message_id=
                 "3EB0C0BD05DCA97A7C09CB", timestamp=datetime.fromtimestamp(1717604327, UTC)),
    "text-extended-quoted": dict(type="text", text="sim, esse mesmo",
                                 reply_to="3EB0PREVIOUS0001"),
    "image-base64": dict(type="image", text="foto do produto"),
    "video": dict(type="video", text="olha isso"),
    "audio": dict(type="audio", text=""),
    "voice": dict(type="voice", text=""),
    "document": dict(type="document", text="segue o boleto"),
    "document-with-caption-raw": dict(type="document", text="contrato assinado"),
    "sticker": dict(type="sticker"),
    "location": dict(type="location",
                     text="Loja Centro Praça da Sé, São Paulo (-23.5505, -46.6333)"),
    "contact": dict(type="contact", text="João Silva 5511977776666"),
    "contacts-array": dict(type="contact", text="Ana 5511911112222; Bia 5521933334444"),
    "reaction": dict(type="reaction", text="👍", reply_to="3EB0OURREPLY000001"),
    "buttons-response": dict(type="button", text="Falar com vendas"),
    "template-button-reply": dict(type="button", text="Suporte"),
    "list-response": dict(type="interactive", text="Plano Premium"),
    "interactive-response": dict(type="interactive", text="Confirmar pedido"),
    "unsupported-poll": dict(type="unsupported", text=""),
    "group": dict(is_group=True, sender="120363025246125486@g.us", phone="5511955554444",
                  lid="123456789012345@lid", sender_name="Carlos", text="bom dia a todos"),
    "lid": dict(sender="123456789012345@lid", phone="5511944443333",
                lid="123456789012345@lid", text="oi, vi o anúncio"),
    "lid-sender-pn": dict(sender="223456789012345@lid", phone="5521933332222"),
    "from-me-phone": dict(from_me=True, sender="5511999990000", sender_name=None),
    "send-message": dict(from_me=True, provider_message_id="3EB0OURREPLY000001",
                         text="Olá! Digite 1 para vendas"),
    "upsert-uppercase": dict(text="evento em maiúsculas", backlog=False),
}


@pytest.mark.parametrize("name, want", MESSAGES.items(), ids=list(MESSAGES))
def test_each_message_fixture_reads_right(name: str, want: dict[str, Any]) -> None:
    msg = one(fixture(name))
    assert isinstance(msg, InboundMessage)
    assert {k: getattr(msg, k) for k in want} == want
    if msg.type in ("image", "video", "audio", "voice", "document", "sticker"):
        assert msg.media is not None and msg.media.mime and msg.media.ref == msg.provider_message_id
    else:
        assert msg.media is None


def test_media_carries_what_the_webhook_told() -> None:
    img = one(fixture("image-base64"))
    assert img.media == Media(mime="image/png", ref="3EB0IMAGE0000000001", url=None,
                              data=base64.b64encode(PNG).decode(), filename=None,
                              size=len(PNG), sha256=hashlib.sha256(PNG).hexdigest())
    doc = one(fixture("document"))
    assert (doc.media.filename, doc.media.size, doc.media.mime) == (
        "boleto.pdf", 53211, "application/pdf")
    assert one(fixture("voice")).media.mime == "audio/ogg; codecs=opus"


def test_an_unknown_message_type_is_kept_whole_as_unsupported() -> None:
    msg = one(fixture("unsupported-poll"))
    assert msg.type == "unsupported"
    assert msg.raw is not None and msg.raw["pollCreationMessageV3"]["name"] == "Melhor horário?"


STATUSES = {"update-server-ack": "sent", "update-delivery-ack": "delivered",
            "update-read": "read", "update-played": "played", "update-error": "failed"}


@pytest.mark.parametrize("name, want", STATUSES.items(), ids=list(STATUSES))
def test_status_fixtures_name_our_message_by_its_key_id(name: str, want: str) -> None:
    st = one(fixture(name))
    assert isinstance(st, StatusUpdate)
    # keyId, not messageId: that one is Evolution's database row
    assert (st.provider_message_id, st.status) == ("3EB0OURREPLY000001", want)
    assert (st.error is not None) == (want == "failed")


@pytest.mark.parametrize("name, target", [
    ("protocol-revoke", "3EB0C0BD05DCA97A7C09CB"),
    ("messages-delete", "3EB0C0BD05DCA97A7C09CB"),
    ("messages-delete-stored", "3EB0OURREPLY000001"),
    ("messages-edited-revoke", "3EB0C0BD05DCA97A7C09CB"),
])
def test_revoked_messages_become_deleted(name: str, target: str) -> None:
    st = one(fixture(name))
    assert isinstance(st, StatusUpdate) and (st.provider_message_id, st.status) == (
        target, "deleted")


@pytest.mark.parametrize("name, state, detail", [
    ("connection-open", "connected", "open"),
    ("connection-close", "disconnected", "close 401"),
    ("connection-connecting", "pairing", "connecting"),
    ("connection-refused", "disconnected", "refused 428"),
    ("qrcode-limit", "disconnected", "QR code limit reached, please login again"),
    ("logout-instance", "disconnected", "logout.instance"),
])
def test_connection_fixtures(name: str, state: str, detail: str) -> None:
    ev = one(fixture(name))
    assert isinstance(ev, ConnectionUpdate) and (ev.state, ev.detail) == (state, detail)


def test_a_qr_code_event_carries_the_png() -> None:
    ev = one(fixture("qrcode-updated"))
    assert isinstance(ev, ConnectionUpdate) and ev.state == "pairing"
    assert ev.qr is not None and ev.qr.startswith("data:image/png;base64,")


def test_history_sync_is_backlog_and_keeps_every_message() -> None:
    events = evo.parse(fixture("messages-set"), INST)
    msgs = [e for e in events if isinstance(e, InboundMessage)]
    assert len(msgs) == len(events)
    assert [(m.provider_message_id, m.backlog, m.from_me) for m in msgs] == [
        ("3EB0HIST0000000001", True, False), ("3EB0HIST0000000002", True, True)]


@pytest.mark.parametrize("name, unknown", [
    ("status-broadcast", False), ("presence-update", False), ("update-pending", False),
    ("messages-edited-edit", False), ("unknown-event", True)])
def test_what_needs_no_action_is_ignored(name: str, unknown: bool) -> None:
    ev = one(fixture(name))
    assert isinstance(ev, Ignored) and ev.unknown is unknown


@pytest.mark.parametrize("name", ["undecrypted-no-content", "undecrypted-stub"])
def test_a_message_not_decrypted_yet_is_not_taken_for_one(name: str) -> None:
    """WhatsApp's "Aguardando mensagem": no content yet, the same id coming again with it.
    Stored as a message, it would take the id and the real text be dropped as its copy."""
    ev = one(fixture(name))
    assert isinstance(ev, Ignored) and not ev.unknown and "3EB0C431C26A1916E07A" in ev.reason


def test_the_shared_fixture_reads_as_an_inbound_text() -> None:
    inst = InstanceConfig(name="sales-01", webhook_secret=SECRET)
    msg = one((SHARED / "evolution-messages-upsert.json").read_bytes(), inst)
    assert (msg.provider_message_id, msg.sender, msg.phone, msg.text, msg.from_me) == (
        "3EB0C0BD05DCA97A7C09CB", "5511999990000", "5511999990000", "1", False)


def test_builders_round_trip_through_parse() -> None:
    msg = one(fe.message("ID1", "123456789012345@lid", "oi",
                         remoteJidAlt="5511944443333@s.whatsapp.net"))
    assert (msg.sender, msg.phone, msg.lid) == (
        "123456789012345@lid", "5511944443333", "123456789012345@lid")
    assert one(fe.sent_echo("ID2", "5511999990000", "olá")).from_me is True
    assert one(fe.status("ID2", "READ")).status == "read"
    assert one(fe.connection("close", 401)).state == "disconnected"
    assert one(fe.qrcode("data:image/png;base64,AAAA")).qr == "data:image/png;base64,AAAA"


def test_event_names_in_either_spelling() -> None:
    body = json.loads(fe.status("ID3", "READ"))
    body["event"] = "MESSAGES_UPDATE"
    assert one(json.dumps(body).encode()).status == "read"


@pytest.mark.parametrize("body, match", [
    (b"not json", "JSON"),
    (b"[1, 2]", "object"),
    (json.dumps({"event": "messages.upsert", "instance": "sales-01",
                 "data": {"key": {"remoteJid": "5511999990000@s.whatsapp.net"},
                          "message": {"conversation": "sem id"}}}).encode(), "key.id"),
    (json.dumps({"event": "messages.update", "instance": "sales-01",
                 "data": {"status": "READ"}}).encode(), "keyId"),
])
def test_bodies_evolution_never_sends_are_payload_errors(body: bytes, match: str) -> None:
    with pytest.raises(PayloadError, match=match):
        evo.parse(body, INST)


# -- authenticity ---------------------------------------------------------------------------------

def test_the_right_token_passes() -> None:
    body = fixture("text")
    evo.verify(body, fe.headers(body, SECRET), fe.query(SECRET), INST)
    # "webhook by events" appends the event to the URL, after our query string
    evo.verify(body, {}, {"token": f"{SECRET}/messages-upsert"}, INST)


@pytest.mark.parametrize("query", [{}, {"token": ""}, {"token": "wrong"},
                                   {"token": "other-instance-secret"}, {"token": "tök"},
                                   {"token": f"{SECRET}x/messages-upsert"}])
def test_a_missing_or_wrong_token_is_refused(query: dict[str, str]) -> None:
    with pytest.raises(AuthError):
        evo.verify(fixture("text"), {}, query, INST)


def test_a_body_naming_another_instance_is_refused() -> None:
    body = fe.message("ID1", "5511999990000", "oi", instance="other-shop")
    evo.verify(body, {}, fe.query(SECRET), INST)  # the token alone does not tell
    with pytest.raises(AuthError):
        evo.parse(body, INST)
    assert one(body, None).text == "oi"  # the CLI reads any
    renamed = InstanceConfig(name="x", webhook_secret=SECRET, options={"instance": "other-shop"})
    assert one(body, renamed).text == "oi"


# -- sending --------------------------------------------------------------------------------------

def test_send_text(gw: fe.FakeEvolution, client: httpx.Client) -> None:
    msg_id = evo.send(client, inst_for(gw), "5511999990000", Outgoing(text="Olá!"), ref="r1")
    (sent,) = gw.sent
    assert sent.body == {"number": "5511999990000", "text": "Olá!"}
    assert sent.headers["apikey"] == fe.API_KEY and msg_id == sent.id


def test_send_to_a_lid(gw: fe.FakeEvolution, client: httpx.Client) -> None:
    evo.send(client, inst_for(gw), "123456789012345@lid", Outgoing(text="oi"))
    assert gw.sent[0].body["number"] == "123456789012345@lid"


def test_send_image_and_document(gw: fe.FakeEvolution, client: httpx.Client) -> None:
    inst = inst_for(gw)
    evo.send(client, inst, "5511999990000",
             Outgoing(kind="image", text="nosso catálogo", data=PNG, mime="image/png"))
    evo.send(client, inst, "5511999990000", Outgoing(kind="document", text="", data=b"%PDF-1.4",
                                                     mime="application/pdf"))
    img, doc = gw.sent
    assert img.body == {"number": "5511999990000", "mediatype": "image", "mimetype": "image/png",
                        "caption": "nosso catálogo", "media": base64.b64encode(PNG).decode()}
    assert (img.kind, img.data, img.caption) == ("image", PNG, "nosso catálogo")
    assert (doc.kind, doc.data, doc.filename, doc.mime) == (
        "document", b"%PDF-1.4", "document.pdf", "application/pdf")


def test_send_audio_as_a_voice_note(gw: fe.FakeEvolution, client: httpx.Client) -> None:
    evo.send(client, inst_for(gw), "5511999990000",
             Outgoing(kind="audio", data=b"OggS-audio", mime="audio/ogg"))
    (sent,) = gw.sent
    assert sent.body == {"number": "5511999990000",
                         "audio": base64.b64encode(b"OggS-audio").decode()}
    assert (sent.kind, sent.data) == ("audio", b"OggS-audio")
    assert gw.http.requests[-1].path == "/message/sendWhatsAppAudio/sales-01"


def test_a_template_is_not_for_evolution(gw: fe.FakeEvolution, client: httpx.Client) -> None:
    with pytest.raises(SendError) as err:
        evo.send(client, inst_for(gw), "5511999990000",
                 Outgoing(kind="template", template={"name": "hello"}))
    assert err.value.retryable is False and not gw.http.requests


def test_a_wrong_key_is_refused_and_never_echoed(gw: fe.FakeEvolution,
                                                 client: httpx.Client) -> None:
    inst = InstanceConfig(name="sales-01", webhook_secret=SECRET, api_url=gw.url,
                          api_key="sk-very-secret")
    with pytest.raises(SendError) as err:
        evo.send(client, inst, "5511999990000", Outgoing(text="oi"))
    assert (err.value.retryable, err.value.code) == (False, "401")
    assert "sk-very-secret" not in str(err.value) and gw.url not in str(err.value)


@pytest.mark.parametrize("reply, retryable, after", [
    (Reply(404, {"status": 404, "error": "Not Found",
                 "response": {"message": ['The "sales-01" instance does not exist']}}),
     False, None),
    (Reply(400, {"status": 400, "error": "Bad Request", "response": {"message": [
        {"jid": "5511999990000@s.whatsapp.net", "exists": False, "number": "5511999990000"}]}}),
     False, None),
    (Reply(429, {"error": "slow down"}, {"Retry-After": "7"}), True, 7.0),
    (Reply(500, {"status": 500, "error": "Internal Server Error",
                 "response": {"message": "Connection Closed"}}), True, None),
])
def test_send_errors(gw: fe.FakeEvolution, client: httpx.Client, reply: Reply,
                     retryable: bool, after: float | None) -> None:
    gw.http.fail(reply, path="sendText")
    with pytest.raises(SendError) as err:
        evo.send(client, inst_for(gw), "5511999990000", Outgoing(text="oi"))
    assert (err.value.retryable, err.value.retry_after) == (retryable, after)
    assert not gw.sent


def test_a_timeout_may_be_retried(gw: fe.FakeEvolution) -> None:
    gw.http.fail(Reply(201, {"key": {"id": "late"}}, delay=1.5))
    with httpx.Client(timeout=0.5) as slow, pytest.raises(SendError) as err:
        evo.send(slow, inst_for(gw), "5511999990000", Outgoing(text="oi"))
    assert err.value.retryable is True


@pytest.mark.parametrize("reply", [Reply(200, b"<html>proxy</html>",
                                         {"Content-Type": "text/html"}),
                                   Reply(201, b"{not json"),
                                   Reply(201, {"status": "PENDING"})])
def test_an_answer_without_a_message_id_is_an_error(gw: fe.FakeEvolution, client: httpx.Client,
                                                    reply: Reply) -> None:
    gw.http.fail(reply)
    with pytest.raises(SendError):
        evo.send(client, inst_for(gw), "5511999990000", Outgoing(text="oi"))


# -- connection and QR -----------------------------------------------------------------------------

def test_connection_states(gw: fe.FakeEvolution, client: httpx.Client) -> None:
    inst = inst_for(gw)
    assert evo.connection(client, inst).state == "connected"
    gw.state = "close"
    got = evo.connection(client, inst)
    assert (got.state, got.detail) == ("disconnected", "close")
    gw.state, gw.qr_base64 = "connecting", "data:image/png;base64,QRQR"
    got = evo.connection(client, inst)
    assert (got.state, got.qr, got.detail) == ("pairing", "data:image/png;base64,QRQR",
                                               "connecting")


def test_connection_when_the_gateway_is_down_or_refuses(gw: fe.FakeEvolution,
                                                        client: httpx.Client) -> None:
    gone = InstanceConfig(name="sales-01", webhook_secret=SECRET, api_url="http://127.0.0.1:9",
                          api_key=fe.API_KEY)
    got = evo.connection(client, gone)
    assert got.state == "disconnected" and "unreachable" in (got.detail or "")
    gw.http.fail(502)
    assert "502" in (evo.connection(client, inst_for(gw)).detail or "")
    bad_key = InstanceConfig(name="sales-01", webhook_secret=SECRET, api_url=gw.url,
                             api_key="nope")
    assert evo.connection(client, bad_key).detail == "credentials refused"


def test_qr(gw: fe.FakeEvolution, client: httpx.Client) -> None:
    inst = inst_for(gw)
    assert evo.qr(client, inst) is None  # linked: nothing to scan
    gw.state, gw.qr_code = "close", "2@raw-qr-text"
    assert evo.qr(client, inst) == "2@raw-qr-text"
    assert gw.state == "connecting"  # asking started the pairing, as Evolution does
    gw.qr_base64 = "data:image/png;base64,QRQR"
    assert evo.qr(client, inst) == "data:image/png;base64,QRQR"


# -- media ---------------------------------------------------------------------------------------

def test_download_inline_base64_needs_no_call(gw: fe.FakeEvolution, client: httpx.Client) -> None:
    media = one(fixture("image-base64")).media
    assert evo.download(client, inst_for(gw), media, max_bytes=10_000) == (PNG, "image/png")
    assert not gw.http.requests


def test_download_by_message_id(gw: fe.FakeEvolution, client: httpx.Client) -> None:
    gw.media["3EB0DOC00000000001"] = (b"%PDF-1.4 boleto", "application/pdf", "boleto.pdf")
    media = one(fixture("document")).media
    media = Media(mime=media.mime, ref=media.ref)  # no size: the fetch is what is checked
    assert evo.download(client, inst_for(gw), media, max_bytes=10_000) == (
        b"%PDF-1.4 boleto", "application/pdf")
    req = gw.http.requests[-1]
    assert req.path == "/chat/getBase64FromMediaMessage/sales-01"
    assert req.json() == {"message": {"key": {"id": "3EB0DOC00000000001"}}, "convertToMp4": False}


def test_download_over_the_limit(gw: fe.FakeEvolution, client: httpx.Client) -> None:
    inst = inst_for(gw)
    with pytest.raises(ValueError):
        evo.download(client, inst, one(fixture("image-base64")).media, max_bytes=10)
    gw.media["big"] = (b"x" * 5000, "application/octet-stream", None)
    with pytest.raises(ValueError):
        evo.download(client, inst, Media(mime=None, ref="big"), max_bytes=1000)
    gw.files["f/big.bin"] = (b"y" * 5000, "application/octet-stream")
    with pytest.raises(ValueError):
        evo.download(client, inst, Media(mime=None, url=f"{gw.url}/files/f/big.bin"),
                     max_bytes=1000)


def test_a_file_url_on_the_gateway_gets_the_key_and_one_elsewhere_not(
        gw: fe.FakeEvolution, client: httpx.Client) -> None:
    inst = inst_for(gw)
    gw.files["s3/a.png"] = (PNG, "image/png")
    assert evo.download(client, inst, Media(mime=None, url=f"{gw.url}/files/s3/a.png"),
                        max_bytes=10_000) == (PNG, "image/png")
    with FakeHTTP() as elsewhere:
        with pytest.raises(SendError) as err:
            evo.download(client, inst, Media(mime="image/png", url=f"{elsewhere.url}/a.png"),
                         max_bytes=10_000)
        assert err.value.retryable is False
        assert all("apikey" not in r.headers for r in elsewhere.requests)


# -- history -------------------------------------------------------------------------------------

def test_recent_gives_the_kept_messages_oldest_first(gw: fe.FakeEvolution,
                                                     client: httpx.Client) -> None:
    for i, (who_me, text) in enumerate([(False, "oi"), (True, "Olá! Como posso ajudar?"),
                                        (False, "quero um orçamento")]):
        gw.keep(fe.message_data(f"H{i}", "5511999990000", text, from_me=who_me,
                                timestamp=1717600000 + i))
    gw.keep(fe.message_data("OTHER", "5511000000000", "outro chat", timestamp=1717600009))
    got = evo.recent(client, inst_for(gw), "5511999990000", limit=2)
    assert [(m.provider_message_id, m.text, m.from_me) for m in got] == [
        ("H1", "Olá! Como posso ajudar?", True), ("H2", "quero um orçamento", False)]
    assert gw.http.requests[-1].json() == {
        "where": {"key": {"remoteJid": "5511999990000@s.whatsapp.net"}}, "offset": 2, "page": 1}
    assert evo.recent(client, inst_for(gw), "123456789012345@lid", limit=5) == []
