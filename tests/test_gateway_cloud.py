"""The WhatsApp Cloud API adapter against real-shaped webhooks and a local fake of the Graph API.

The fixtures in tests/fixtures/gateways/cloud/ are Meta's webhook bodies as pywa's test data
(github.com/david-lev/pywa, tests/data/updates/*.json) and Meta's reference pages give them,
with the business number set to the shared fixtures' one; ``username-only``,
``request-welcome``, ``several``, ``status-deleted`` and ``errors-only`` are those same bodies
with one documented field changed.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_bridge import (
    Adapter,
    AuthError,
    ConnectionUpdate,
    Event,
    Ignored,
    InboundMessage,
    InstanceConfig,
    Media,
    NotOffered,
    Outgoing,
    PayloadError,
    SendError,
    StatusUpdate,
    cloud,
)
from tests.gateways import fake_cloud as wire
from tests.gateways.fake_cloud import APP_SECRET, PHONE_ID, TOKEN, FakeCloud
from tests.gateways.fakehttp import FakeHTTP, Reply

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "gateways" / "cloud"
SHARED = HERE.parent.parent / "shared" / "fixtures" / "gateways"
OPTIONS = {"phone_number_id": PHONE_ID, "verify_token": "vt-123"}
INST = InstanceConfig(name="loja", webhook_secret=APP_SECRET, api_key=TOKEN, options=OPTIONS)


@pytest.fixture
def fake() -> Iterator[FakeCloud]:
    with FakeHTTP() as http:
        yield FakeCloud(http)


@pytest.fixture
def inst(fake: FakeCloud) -> InstanceConfig:
    return InstanceConfig(name="loja", webhook_secret=APP_SECRET, api_url=fake.api_url,
                          api_key=TOKEN, options=OPTIONS)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c


def _fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def _summary(ev: Event) -> tuple[Any, ...]:
    if isinstance(ev, InboundMessage):
        media = (ev.media.mime, ev.media.ref) if ev.media else None
        return ("msg", ev.provider_message_id, ev.type, ev.text, ev.sender, ev.phone,
                ev.reply_to, media, ev.from_me)
    if isinstance(ev, StatusUpdate):
        return ("status", ev.provider_message_id, ev.status, ev.error_code)
    if isinstance(ev, Ignored):
        return ("ignored", ev.unknown)
    return ("connection", ev.state)


U = "972987654321"
CASES: dict[str, list[tuple[Any, ...]]] = {
    "text": [("msg", "wamid.xyzxyz", "text", "Body Text", U, U, None, None, False)],
    "image": [("msg", "wamid.xyzxyz", "image", "", U, U, None, ("image/jpeg", "65463453"),
               False)],
    "image-with-url": [("msg", "wamid.xyzxyz", "image", "", U, U, None,
                        ("image/jpeg", "65463453"), False)],
    "video": [("msg", "wamid.xyzxyz", "video", "caption", U, U, None,
               ("video/mp4", "765756756"), False)],
    "document": [("msg", "wamid.xyzxyz", "document", "caption", U, U, None,
                  ("application/pdf", "1234567890987654321"), False)],
    "audio": [("msg", "wamid.xyzxyz", "audio", "", U, U, None,
               ("audio/ogg; codecs=opus", "1234567890987654321"), False)],
    "voice": [("msg", "wamid.xyzxyz", "voice", "", U, U, None,
               ("audio/ogg; codecs=opus", "1234567890987654321"), False)],
    "sticker": [("msg", "wamid.xyzxyz", "sticker", "", U, U, None,
                 ("image/webp", "1234567890987654321"), False)],
    "reaction": [("msg", "wamid.xyzxyz", "reaction", "\U0001f62e", U, U, "wamid.yzxyzx=", None,
                  False)],
    "reaction-removed": [("msg", "wamid.xyzxyz", "reaction", "", U, U, "wamid.yzxyzx=", None,
                          False)],
    "location": [("msg", "wamid.xyzxyz", "location", "Facebook HQ 1 Hacker Way, Menlo Park, CA "
                  "94025 (37.4611978, -122.2164385)", U, U, None, None, False)],
    "location-current": [("msg", "wamid.xyzxyz", "location", "(12.25089, 43.90539)", U, U,
                          None, None, False)],
    "contacts": [("msg", "wamid.xyzxyz", "contact", "Chandler Bing +1 555-555-5555; Monica "
                  "+1 666-666-6666; Rachel Green +1 777-777-7777", U, U, None, None, False)],
    "order": [("msg", "wamid.xyzxyz", "unsupported", "Order: 3 x HAMBURGER (30 ILS); "
               "2 x FRENCH_FRIES (35 ILS); 2 x SODA (10 ILS)", U, U, None, None, False)],
    "unsupported": [("msg", "wamid.xyzxyz", "unsupported", "", U, U, None, None, False)],
    "interactive-with-error": [("msg", "wamid.wegrchytvwcggt=", "unsupported", "", U, U,
                                "wamid.gvwegfretge==", None, False)],
    "reply": [("msg", "wamid.xyzxyz", "text", "replied text", U, U, "wamid.xyzxyz==", None,
               False)],
    "referral": [("msg", "wamid.ID", "text", "BODY", U, U, None, None, False)],
    "button-reply": [("msg", "wamid.xyzxyz", "interactive", "title", U, U, "wamid.xyzxyz",
                      None, False)],
    "list-reply": [("msg", "wamid.zyzxyz", "interactive", "title", U, U, "wamid.xyzxyz", None,
                    False)],
    "flow-reply": [("msg", "wamid.wegrchytvwcggt==", "interactive", "Sent", U, U,
                    "wamid.gvwegfretge==", None, False)],
    "quick-reply-button": [("msg", "wamid.xsidjw", "button", "title", U, U, "wamid.xyzxyz==",
                            None, False)],
    "bsuid-only": [("msg", "wamid.xsidjx", "button", "title", U, U, None, None, False)],
    "username-only": [("msg", "wamid.xyzxyz", "text", "Body Text", "US.13491208655302741918",
                       None, None, None, False)],
    "request-welcome": [("msg", "wamid.welcome", "system", "", U, U, None, None, False)],
    "system-number-changed": [("msg", "wamid.xyzxyz==", "system", "User A changed from "
                               "972987654321 to 972912345678", U, U, None, None, False)],
    "edit": [("msg", "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=", "image",
              "Updated image caption", "16505551234", "16505551234",
              "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA=",
              ("image/jpeg", "1234567890"), False)],
    "echo-text": [("msg", "wamid.echo1", "text", "Test message", U, U, None, None, True)],
    "revoke": [("status", "wamid.original1", "deleted", None)],
    "status-sent": [("status", "wamid.xyzxyz", "sent", None)],
    "status-delivered": [("status", "wamid.xyzxyz", "delivered", None)],
    "status-read": [("status", "wamid.xyzxyz", "read", None)],
    "status-played": [("status", "wamid.xyzxyz", "played", None)],
    "status-failed": [("status", "wamid.xyzxyz", "failed", "130472")],
    "status-deleted": [("status", "wamid.xyzxyz", "deleted", None)],
    "status-group": [("status", "wamid.group1", "read", None)],
    "several": [("msg", "wamid.xyzxyz", "text", "Body Text", U, U, None, None, False),
                ("msg", "wamid.second", "image", "", U, U, None, ("image/jpeg", "65463453"),
                 False),
                ("status", "wamid.ours1", "read", None),
                ("status", "wamid.ours2", "delivered", None)],
    "errors-only": [("ignored", False)],
    "account-update": [("ignored", False)],
    "template-status-update": [("ignored", False)],
}


def test_every_fixture_has_a_case() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_webhook_fixtures_become_the_right_events(name: str) -> None:
    body = _fixture(name)
    cloud.verify(body, wire.headers(body), {}, INST)
    assert [_summary(ev) for ev in cloud.parse(body, INST)] == CASES[name]


def test_shared_fixtures_parse() -> None:
    body = (SHARED / "cloud-inbound-text.json").read_bytes()
    (msg,) = cloud.parse(body, INST)
    assert isinstance(msg, InboundMessage)
    assert (msg.sender, msg.phone, msg.sender_name, msg.text, msg.lid) == (
        "16505551234", "16505551234", "Maria", "1", None)
    assert msg.timestamp.timestamp() == 1739321024 and msg.timestamp.tzinfo is not None
    (st,) = cloud.parse((SHARED / "cloud-status-delivered.json").read_bytes(), INST)
    assert isinstance(st, StatusUpdate) and (st.provider_message_id, st.status) == (
        "wamid.HBgL...", "delivered")


def test_details_users_rely_on() -> None:
    (msg,) = cloud.parse(_fixture("document"), INST)
    assert isinstance(msg, InboundMessage) and msg.media is not None
    assert (msg.media.filename, msg.media.sha256, msg.sender_name) == (
        "filename.pdf", "grwfwe/ZPx0wAbdfbdeFUNItPZ0RylL8gGUvdt3YFqc18SY=", "Test Name")
    (msg,) = cloud.parse(_fixture("image-with-url"), INST)
    assert isinstance(msg, InboundMessage) and msg.media is not None
    assert msg.media.url and msg.media.url.startswith("https://lookaside.fbsbx.com/")
    (st,) = cloud.parse(_fixture("status-failed"), INST)
    assert isinstance(st, StatusUpdate) and st.error == (
        "User's number is part of an experiment: Failed to send message because this user's "
        "phone number is part of an experiment")
    (msg,) = cloud.parse(_fixture("flow-reply"), INST)
    assert isinstance(msg, InboundMessage) and msg.raw is not None
    assert "response_json" in msg.raw["interactive"]["nfm_reply"]
    (msg,) = cloud.parse(_fixture("unsupported"), INST)
    assert isinstance(msg, InboundMessage) and msg.raw and msg.raw["errors"][0]["code"] == 131051
    (msg,) = cloud.parse(_fixture("echo-text"), INST)
    assert isinstance(msg, InboundMessage) and msg.from_me and msg.sender_name is None


def test_a_group_message_names_the_group_and_the_participant() -> None:
    body = wire.message("wamid.g1", "5511987654321", "oi", group_id="Y2FwaV9ncm91cDox")
    (msg,) = cloud.parse(body, INST)
    assert isinstance(msg, InboundMessage)
    assert (msg.is_group, msg.sender, msg.phone) == (True, "Y2FwaV9ncm91cDox", "5511987654321")


# Authenticity --------------------------------------------------------------------------------

def test_the_signature_is_checked_on_the_raw_body() -> None:
    body = _fixture("text")
    cloud.verify(body, wire.headers(body), {}, INST)
    cloud.verify(body, {"x-hub-signature-256": wire.headers(body)["X-Hub-Signature-256"]}, {},
                 INST)
    for bad in ({}, wire.headers(body, "other-secret"), wire.headers(body + b" "),
                {"X-Hub-Signature-256": "sha256="}, {"X-Hub-Signature-256": "garbage"}):
        with pytest.raises(AuthError):
            cloud.verify(body, bad, {}, INST)
    with pytest.raises(AuthError):  # no app secret: nothing can be trusted
        cloud.verify(body, wire.headers(body, ""), {}, InstanceConfig("x", ""))


def test_a_webhook_for_another_number_is_refused() -> None:
    body = wire.message("wamid.1", "5511987654321", "oi", phone_number_id="999999999")
    with pytest.raises(AuthError):
        cloud.parse(body, INST)
    with pytest.raises(AuthError):  # an instance that does not say its number trusts none
        cloud.parse(_fixture("text"), InstanceConfig("loja", APP_SECRET))
    several = json.loads(_fixture("several"))
    several["entry"][0]["changes"][1]["value"]["metadata"]["phone_number_id"] = "999"
    with pytest.raises(AuthError):  # one foreign change refuses the whole body
        cloud.parse(json.dumps(several).encode(), INST)
    assert len(cloud.parse(body, None)) == 1  # the CLI reads any body


def test_handshake_echoes_the_challenge_only_for_the_right_token() -> None:
    ok = {"hub.mode": "subscribe", "hub.verify_token": "vt-123", "hub.challenge": "1158201444"}
    assert cloud.handshake(ok, INST) == "1158201444"
    for bad in ({**ok, "hub.verify_token": "vt-124"}, {**ok, "hub.mode": "unsubscribe"},
                {k: v for k, v in ok.items() if k != "hub.verify_token"},
                {k: v for k, v in ok.items() if k != "hub.challenge"}):
        with pytest.raises(AuthError):
            cloud.handshake(bad, INST)
    with pytest.raises(AuthError):
        cloud.handshake(ok, InstanceConfig("loja", APP_SECRET))


# Unknown and malformed -----------------------------------------------------------------------

def test_unknown_shapes_are_kept_not_lost() -> None:
    body = json.dumps(wire.envelope({"novelty": [1]}, field_="brand_new_field")).encode()
    assert cloud.parse(body, INST) == [Ignored("unknown field 'brand_new_field'", unknown=True)]
    (ev,) = cloud.parse(b'{"object": "page", "entry": []}', INST)
    assert isinstance(ev, Ignored) and ev.unknown
    (ev,) = cloud.parse(wire.status("wamid.1", "teleported"), INST)
    assert isinstance(ev, Ignored) and ev.unknown
    (ev,) = cloud.parse(json.dumps(wire.envelope({"surprise": 1})).encode(), INST)
    assert isinstance(ev, Ignored) and ev.unknown
    body = wire.message("wamid.p", "5511987654321", type="poll", poll={"question": "?"})
    (msg,) = cloud.parse(body, INST)
    assert isinstance(msg, InboundMessage) and msg.type == "unsupported"
    assert msg.raw is not None and msg.raw["poll"] == {"question": "?"}


@pytest.mark.parametrize("body, words", [
    (b"{not json", "JSON"),
    (b'{"object": "whatsapp_business_account", "entry": {}}', "entry"),
    (b'{"object": "whatsapp_business_account", "entry": [{"changes": 1}]}', "changes"),
    (json.dumps(wire.envelope({"messages": [{"from": "5511987654321", "type": "text"}]})
                ).encode(), "'id'"),
    (json.dumps(wire.envelope({"messages": [{"id": "wamid.1", "type": "text"}]})).encode(),
     "from"),
    (json.dumps(wire.envelope({"messages": "nope"})).encode(), "messages"),
    (wire.message("wamid.1", "5511987654321", timestamp=1739321024000), "timestamp"),
])
def test_malformed_bodies_are_payload_errors(body: bytes, words: str) -> None:
    with pytest.raises(PayloadError, match=words):
        cloud.parse(body, INST)


# Sending -------------------------------------------------------------------------------------

def test_a_status_gives_back_the_reference_our_send_carried() -> None:
    (ev,) = cloud.parse(wire.status("wamid.9", "delivered", ref="out-42"), INST)
    assert isinstance(ev, StatusUpdate) and (ev.provider_message_id, ev.ref) == (
        "wamid.9", "out-42")
    (ev,) = cloud.parse(wire.status("wamid.9", "read", ref="x" * 600), INST)
    assert isinstance(ev, StatusUpdate) and ev.ref is None  # not ours: ours are short


def test_send_text_is_the_documented_wire_body(fake: FakeCloud, inst: InstanceConfig,
                                               client: httpx.Client) -> None:
    wamid = cloud.send(client, inst, "16505551234", Outgoing(text="Olá!"), ref="out-1")
    (sent,) = fake.sent
    assert wamid == sent.id
    # and our reference, which Meta gives back on the message's statuses
    assert sent.body.pop("biz_opaque_callback_data") == "out-1"
    assert sent.body == json.loads((SHARED / "cloud-send-text-request.json").read_bytes())
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert fake.http.requests[-1].path == f"/v21.0/{PHONE_ID}/messages"


def test_send_files_uploads_then_sends_by_media_id(fake: FakeCloud, inst: InstanceConfig,
                                                   client: httpx.Client) -> None:
    cloud.send(client, inst, "+55 11 98765-4321",
               Outgoing(kind="image", data=b"\x89PNG", mime="image/png", text="a foto"))
    cloud.send(client, inst, "5511987654321", Outgoing(
        kind="document", data=b"%PDF-1.4", mime="application/pdf", filename="nota.pdf",
        text="sua nota"))
    cloud.send(client, inst, "5511987654321",
               Outgoing(kind="audio", data=b"OggS", mime="audio/ogg; codecs=opus"))
    cloud.send(client, inst, "5511987654321", Outgoing(kind="audio", data=b"ID3",
                                                       mime="audio/mpeg"))
    image, doc, voice, mp3 = fake.sent
    assert (image.to, image.kind, image.caption, image.mime, image.data) == (
        "5511987654321", "image", "a foto", "image/png", b"\x89PNG")
    assert image.body["image"] == {"id": image.body["image"]["id"], "caption": "a foto"}
    assert (doc.filename, doc.caption, doc.data, doc.mime) == (
        "nota.pdf", "sua nota", b"%PDF-1.4", "application/pdf")
    assert set(doc.body["document"]) == {"id", "caption", "filename"}
    assert voice.body["audio"] == {"id": voice.body["audio"]["id"], "voice": True}
    assert voice.data == b"OggS" and mp3.body["audio"] == {"id": mp3.body["audio"]["id"]}
    uploads = [r for r in fake.http.requests if r.path.endswith("/media")]
    assert len(uploads) == 4 and all(r.headers["authorization"] == f"Bearer {TOKEN}"
                                     for r in uploads)
    assert "multipart/form-data" in uploads[0].headers["content-type"]


def test_send_template_and_other_recipients(fake: FakeCloud, inst: InstanceConfig,
                                            client: httpx.Client) -> None:
    components = [{"type": "body", "parameters": [{"type": "text", "text": "Maria"}]}]
    cloud.send(client, inst, "5511987654321", Outgoing(kind="template", template={
        "name": "retomar_conversa", "language": "pt_BR", "components": components}))
    cloud.send(client, inst, "US.13491208655302741918", Outgoing(text="oi"))
    cloud.send(client, inst, "Y2FwaV9ncm91cDox", Outgoing(text="oi, grupo"))
    tpl, user, group = fake.sent
    assert tpl.body["template"] == {"name": "retomar_conversa", "language": {"code": "pt_BR"},
                                    "components": components}
    assert user.body["recipient"] == "US.13491208655302741918" and "to" not in user.body
    assert (group.body["recipient_type"], group.body["to"]) == ("group", "Y2FwaV9ncm91cDox")
    with pytest.raises(SendError) as err:
        cloud.send(client, inst, "5511987654321", Outgoing(kind="template",
                                                           template={"name": "x"}))
    assert not err.value.retryable


def test_outside_the_24_hour_window_only_a_template_goes(fake: FakeCloud, inst: InstanceConfig,
                                                         client: httpx.Client) -> None:
    fake.outside_window.add("5511987654321")
    with pytest.raises(SendError) as err:
        cloud.send(client, inst, "5511987654321", Outgoing(text="oi"))
    assert (err.value.retryable, err.value.code) == (False, "131047")
    assert "24 hours" in str(err.value) and "template" in str(err.value)
    cloud.send(client, inst, "5511987654321", Outgoing(kind="template", template={
        "name": "retomar_conversa", "language": {"code": "pt_BR"}}))
    assert [s.kind for s in fake.sent] == ["template"]


def _send_error(client: httpx.Client, inst: InstanceConfig) -> SendError:
    with pytest.raises(SendError) as err:
        cloud.send(client, inst, "5511987654321", Outgoing(text="oi"))
    assert TOKEN not in str(err.value) and "127.0.0.1" not in str(err.value)
    return err.value


@pytest.mark.parametrize("reply, retryable, code", [
    (wire.graph_error(404, 803, "Some of the aliases you requested do not exist"), False, "803"),
    (wire.graph_error(400, 100, "(#100) Invalid parameter"), False, "100"),
    (wire.graph_error(400, 131026, "Message Undeliverable"), False, "131026"),
    (wire.reengagement(), False, "131047"),
    (wire.graph_error(400, 130429, "Rate limit hit"), True, "130429"),
    (wire.graph_error(400, 131056, "(Business Account, Consumer Account) pair rate limit hit"),
     True, "131056"),
    (wire.graph_error(400, 80007, "Rate limit issues"), True, "80007"),
    (wire.graph_error(500, 131000, "Something went wrong"), True, "131000"),
    (Reply(500, {"error": "boom"}), True, "500"),
    (Reply(404, b"<html>not here</html>", {"Content-Type": "text/html"}), False, "404"),
])
def test_send_errors_say_whether_to_retry(fake: FakeCloud, inst: InstanceConfig,
                                          client: httpx.Client, reply: Reply, retryable: bool,
                                          code: str) -> None:
    fake.http.fail(reply, path="/messages$")
    err = _send_error(client, inst)
    assert (err.retryable, err.code) == (retryable, code)
    assert fake.sent == []


def test_a_refused_token_is_not_retried(fake: FakeCloud, inst: InstanceConfig,
                                        client: httpx.Client) -> None:
    wrong = InstanceConfig("loja", APP_SECRET, api_url=fake.api_url, api_key="EAAG-stale",
                           options=OPTIONS)
    err = _send_error(client, wrong)
    assert (err.retryable, err.code) == (False, "190") and "EAAG-stale" not in str(err)
    err = _send_error(client, InstanceConfig("loja", APP_SECRET, api_url=fake.api_url,
                                             options=OPTIONS))
    assert not err.retryable and fake.sent == []


def test_rate_limit_and_transport_failures_may_pass(fake: FakeCloud, inst: InstanceConfig,
                                                    client: httpx.Client) -> None:
    fake.http.fail(Reply(429, {"error": {"message": "slow down", "code": 4}},
                         {"Retry-After": "7"}), path="/messages$")
    err = _send_error(client, inst)
    assert (err.retryable, err.retry_after) == (True, 7)
    fake.http.fail(Reply(delay=1.5), path="/messages$")
    with httpx.Client(timeout=0.5) as quick:
        assert _send_error(quick, inst).retryable
    fake.http.fail(Reply(200, b"<html>", {"Content-Type": "text/html"}), path="/messages$")
    assert "not JSON" in str(_send_error(client, inst))
    fake.http.fail(Reply(200, {"messaging_product": "whatsapp", "messages": []}),
                   path="/messages$")
    assert "without a message id" in str(_send_error(client, inst))
    gone = InstanceConfig("loja", APP_SECRET, api_url=f"http://127.0.0.1:{_free_port()}",
                          api_key=TOKEN, options=OPTIONS)
    assert _send_error(client, gone).retryable


def test_a_failed_upload_stops_the_send(fake: FakeCloud, inst: InstanceConfig,
                                        client: httpx.Client) -> None:
    fake.http.fail(wire.graph_error(400, 131053, "Media upload error"), path="/media$")
    with pytest.raises(SendError) as err:
        cloud.send(client, inst, "5511987654321",
                   Outgoing(kind="image", data=b"x", mime="image/png"))
    assert not err.value.retryable and fake.sent == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Connection, QR, history ---------------------------------------------------------------------

def test_connection_reports_what_meta_says(fake: FakeCloud, inst: InstanceConfig,
                                           client: httpx.Client) -> None:
    up = cloud.connection(client, inst)
    assert (up.state, up.detail) == ("connected", "CONNECTED, quality GREEN")
    assert fake.http.requests[-1].query["fields"].split(",")[-1] == "status"
    assert fake.phone is not None
    fake.phone.update(status="FLAGGED", quality_rating="RED")
    assert cloud.connection(client, inst).state == "connected"  # it still sends, for now
    fake.phone["status"] = "BANNED"
    down = cloud.connection(client, inst)
    assert (down.state, down.detail) == ("disconnected", "BANNED, quality RED")


def test_connection_failures_are_states_not_exceptions(fake: FakeCloud, inst: InstanceConfig,
                                                       client: httpx.Client) -> None:
    stale = InstanceConfig("loja", APP_SECRET, api_url=fake.api_url, api_key="EAAG-stale",
                           options=OPTIONS)
    assert _state(cloud.connection(client, stale)) == ("disconnected", "credentials refused")
    fake.http.fail(Reply(503, {"error": {"message": "Service temporarily unavailable",
                                         "code": 2}}))
    state, detail = _state(cloud.connection(client, inst))
    assert state == "disconnected" and "503" in (detail or "")
    gone = InstanceConfig("loja", APP_SECRET, api_url=f"http://127.0.0.1:{_free_port()}",
                          api_key=TOKEN, options=OPTIONS)
    state, detail = _state(cloud.connection(client, gone))
    assert state == "disconnected" and "unreachable" in (detail or "")
    fake.phone = None
    assert cloud.connection(client, inst).state == "disconnected"
    assert all(TOKEN not in (_state(cloud.connection(client, i))[1] or "") for i in (inst, gone))


def _state(up: ConnectionUpdate) -> tuple[str, str | None]:
    return up.state, up.detail


def test_no_qr_and_no_history_on_cloud(inst: InstanceConfig, client: httpx.Client) -> None:
    with pytest.raises(NotOffered):
        cloud.qr(client, inst)
    with pytest.raises(NotOffered):
        cloud.recent(client, inst, "5511987654321", limit=20)


# Downloads -----------------------------------------------------------------------------------

def test_download_by_media_id(fake: FakeCloud, inst: InstanceConfig,
                              client: httpx.Client) -> None:
    fake.add_media("65463453", b"\xff\xd8jpeg-bytes", "image/jpeg")
    (msg,) = cloud.parse(_fixture("image"), INST)
    assert isinstance(msg, InboundMessage) and msg.media is not None
    data, mime = cloud.download(client, inst, msg.media, max_bytes=1000)
    assert (data, mime) == (b"\xff\xd8jpeg-bytes", "image/jpeg")
    info, file = fake.http.requests[-2:]
    assert info.path == "/v21.0/65463453" and info.query["phone_number_id"] == PHONE_ID
    assert file.headers["authorization"] == f"Bearer {TOKEN}"


def test_download_over_the_limit_is_refused(fake: FakeCloud, inst: InstanceConfig,
                                            client: httpx.Client) -> None:
    fake.add_media("m1", b"x" * 5000, "video/mp4")
    with pytest.raises(ValueError):
        cloud.download(client, inst, Media(mime="video/mp4", ref="m1"), max_bytes=4999)
    assert not any("attachments" in r.path for r in fake.http.requests)  # refused at once
    # Meta's size is only a hint: the stream itself is cut off when it lies.
    fake.http.fail(Reply(200, {"url": f"{fake.api_url}/whatsapp_business/attachments/?mid=m1",
                               "mime_type": "video/mp4", "file_size": 10, "id": "m1"}))
    with pytest.raises(ValueError):
        cloud.download(client, inst, Media(mime="video/mp4", ref="m1"), max_bytes=4999)


def test_inline_data_is_decoded_and_limited(inst: InstanceConfig, client: httpx.Client) -> None:
    media = Media(mime="text/plain", data=base64.b64encode(b"hello").decode())
    assert cloud.download(client, inst, media, max_bytes=5) == (b"hello", "text/plain")
    with pytest.raises(ValueError):
        cloud.download(client, inst, media, max_bytes=4)


def test_the_token_never_goes_to_a_foreign_host(fake: FakeCloud, inst: InstanceConfig,
                                                client: httpx.Client) -> None:
    with FakeHTTP() as elsewhere:
        url = f"{elsewhere.url}/whatsapp_business/attachments/?mid=1"
        with pytest.raises(SendError) as err:
            cloud.download(client, inst, Media(mime="image/jpeg", url=url), max_bytes=1000)
        assert not err.value.retryable
        fake.http.fail(Reply(200, {"url": url, "mime_type": "image/jpeg", "file_size": 3,
                                   "id": "m2"}))
        with pytest.raises(SendError):  # even when Graph itself names that URL
            cloud.download(client, inst, Media(mime="image/jpeg", ref="m2"), max_bytes=1000)
        assert elsewhere.requests == []
    with pytest.raises(SendError):  # plain HTTP to a Meta host name is not Meta
        cloud.download(client, inst, Media(mime="image/jpeg",
                                           url="http://lookaside.fbsbx.com/x"), max_bytes=9)


def test_a_missing_media_id_is_a_send_error(fake: FakeCloud, inst: InstanceConfig,
                                            client: httpx.Client) -> None:
    with pytest.raises(SendError) as err:
        cloud.download(client, inst, Media(mime="image/jpeg", ref="nope"), max_bytes=1000)
    assert not err.value.retryable and TOKEN not in str(err.value)


@pytest.mark.parametrize("extra", [
    {"type": "contacts", "contacts": 5},
    {"type": "contacts", "contacts": [{"name": "x", "phones": 7}]},
    {"type": "order", "order": {"product_items": {"a": 1}}},
    {"type": "location", "location": []},
    {"type": "interactive", "interactive": {"type": "button_reply", "button_reply": None}},
    {"type": "image", "image": "not an object"},
    {"type": "edit", "edit": {"message": 3}},
    {"type": "text", "text": {"body": 42}, "context": "nope"},
])
def test_odd_parts_of_a_signed_message_never_crash(extra: dict[str, Any]) -> None:
    body = wire.message("wamid.odd", "5511987654321", **extra)
    (msg,) = cloud.parse(body, INST)
    assert isinstance(msg, InboundMessage) and msg.provider_message_id == "wamid.odd"


def test_a_garbled_media_url_is_refused_not_mistaken_for_a_size(inst: InstanceConfig,
                                                                client: httpx.Client) -> None:
    with pytest.raises(SendError):
        cloud.download(client, inst, Media(mime="image/jpeg", url="http://h:port/x"),
                       max_bytes=9)


def test_the_module_is_an_adapter() -> None:
    adapter: Adapter = cloud  # mypy checks every function's signature against the protocol
    assert callable(adapter.verify) and callable(cloud.handshake)
