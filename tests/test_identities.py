"""One customer is one contact, whatever address a gateway tells them by.

Real webhook bodies of each gateway (built with the fakes' builders) are parsed by their
adapters and stored with ``server.services.inbound.handle``, on SQLite and PostgreSQL. Every
pair of a customer's identities must land on ONE contact, in either order: the phone with and
without Brazil's ninth digit, WhatsApp's ``@lid`` told together with the phone, WAHA's ``@c.us``
and Cloud's ``wa_id``. A duplicate-contact bug came back twice: these tests are strict.
"""

from __future__ import annotations

import base64
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway_bridge import Event, InboundMessage, adapter_for
from server.schema import Contact, ContactIdentity, Conversation, Instance, Message
from server.services import inbound, instances
from tests.gateways import fake_cloud as fc
from tests.gateways import fake_evolution as fe
from tests.gateways import fake_waha as fw

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


class Customer:
    """One person: a Brazilian mobile (13 digits with the ninth, 12 without) and an @lid."""

    def __init__(self, n: int) -> None:
        self.phone13 = f"55119{87650000 + n:08d}"  # 55 11 9 XXXXXXXX
        self.phone12 = self.phone13[:4] + self.phone13[5:]  # 55 11 XXXXXXXX
        assert len(self.phone12) == 12 and self.phone12[4] in "6789"
        self.lid = f"{123456789000000 + n}@lid"


def _id() -> str:
    return f"3EB0{uuid.uuid4().hex[:16].upper()}"


# Each identity: (provider, how to build the webhook body of a text from that customer).
Build = Callable[[Customer], bytes]
IDENTITIES: dict[str, tuple[str, Build]] = {
    "evolution-jid-ninth-digit": (
        "evolution", lambda c: fe.message(_id(), f"{c.phone13}@s.whatsapp.net", "oi")),
    "evolution-jid-12-digits": (
        "evolution", lambda c: fe.message(_id(), f"{c.phone12}@s.whatsapp.net", "oi")),
    "evolution-lid-with-remoteJidAlt": (
        "evolution", lambda c: fe.message(_id(), c.lid, "oi", addressingMode="lid",
                                          remoteJidAlt=f"{c.phone12}@s.whatsapp.net")),
    "evolution-lid-with-senderPn": (
        "evolution", lambda c: fe.message(_id(), c.lid, "oi",
                                          senderPn=f"{c.phone13}@s.whatsapp.net")),
    "waha-c.us": ("waha", lambda c: fw.message(_id(), f"{c.phone13}@c.us", "oi")),
    "waha-lid-phone-in-_data": (
        "waha", lambda c: fw.message(_id(), c.lid, "oi", _data={
            "key": {"remoteJid": c.lid, "remoteJidAlt": f"{c.phone13}@s.whatsapp.net",
                    "fromMe": False, "id": "X", "addressingMode": "lid"},
            "pushName": "Maria", "message": {"conversation": "oi"}})),
    "cloud-wa_id-ninth-digit": ("cloud", lambda c: fc.message(f"wamid.{_id()}", c.phone13, "oi")),
    "cloud-wa_id-12-digits": ("cloud", lambda c: fc.message(f"wamid.{_id()}", c.phone12, "oi")),
}
PAIRS = list(itertools.combinations(IDENTITIES, 2))


@pytest.fixture
def numbers(sessions: sessionmaker[Session]) -> dict[str, Instance]:
    """One number per gateway, in the test database."""
    made: dict[str, dict[str, Any]] = {
        "evolution": {"api_url": "http://127.0.0.1:9", "api_key": "k",
                      "webhook_secret": "evo-secret", "options": {"instance": fe.INSTANCE}},
        "waha": {"api_url": "http://127.0.0.1:9", "api_key": "k",
                 "webhook_secret": "waha-secret"},
        "cloud": {"api_url": "http://127.0.0.1:9", "api_key": "k", "webhook_secret": "s3cret!!",
                  "verify_token": "v", "options": {"phone_number_id": fc.PHONE_ID}},
    }
    return {p: instances.create(sessions, {"name": f"{p}-1", "provider": p, **f}).instance
            for p, f in made.items()}


def _rules(tmp_path: Path) -> inbound.Rules:
    # The builders' timestamps are of any age: nothing here is about staleness.
    return inbound.Rules(stale_after=timedelta(days=36500), data_dir=tmp_path,
                         media_max_bytes=1_000_000)


def _events(provider: str, body: bytes, inst: Instance) -> list[Event]:
    events = adapter_for(provider).parse(body, instances.config(inst))
    assert events and all(isinstance(e, InboundMessage) for e in events), events
    return events


def _deliver(sessions: sessionmaker[Session], numbers: dict[str, Instance], rules: inbound.Rules,
             identity: str, customer: Customer) -> None:
    provider, build = IDENTITIES[identity]
    inst = numbers[provider]
    out = inbound.handle(sessions, inst, _events(provider, build(customer), inst), rules)
    assert out.stored == 1, (identity, out)


@pytest.mark.parametrize("first, second", PAIRS, ids=[f"{a}+{b}" for a, b in PAIRS])
def test_every_pair_of_identities_is_one_contact(sessions: sessionmaker[Session],
                                                 numbers: dict[str, Instance], tmp_path: Path,
                                                 first: str, second: str) -> None:
    rules = _rules(tmp_path)
    forward, backward = Customer(1), Customer(2)
    _deliver(sessions, numbers, rules, first, forward)
    _deliver(sessions, numbers, rules, second, forward)
    _deliver(sessions, numbers, rules, second, backward)  # the other order, another person
    _deliver(sessions, numbers, rules, first, backward)
    with sessions() as s:
        one = _contact_ids(s, forward)
        other = _contact_ids(s, backward)
        assert len(one) == 1, f"{first} then {second}: {len(one)} contacts"
        assert len(other) == 1, f"{second} then {first}: {len(other)} contacts"
        assert one != other
        assert s.scalar(select(func.count()).select_from(Contact)) == 2
        assert s.scalar(select(func.count()).select_from(Message)) == 4
        # One conversation per number the customer wrote to, never two on one number.
        for contact_id in one | other:
            convs = s.execute(select(Conversation.instance_id, func.count()).where(
                Conversation.contact_id == contact_id).group_by(Conversation.instance_id)).all()
            assert all(n == 1 for _, n in convs), convs
            assert len(convs) == len({IDENTITIES[first][0], IDENTITIES[second][0]})
        # The contact's phone is the canonical one, with the ninth digit.
        phones = set(s.scalars(select(Contact.phone)))
        assert phones == {forward.phone13, backward.phone13}


def _contact_ids(s: Session, customer: Customer) -> set[int]:
    """The contacts holding any identity of the customer, or their phone in either form."""
    ids = set(s.scalars(select(ContactIdentity.contact_id).where(ContactIdentity.value.in_(
        [customer.phone13, customer.phone12, customer.lid]))))
    ids |= set(s.scalars(select(Contact.id).where(Contact.phone.in_(
        [customer.phone13, customer.phone12]))))
    return ids


def _all_messages_on_one_contact(s: Session) -> set[int]:
    return set(s.scalars(select(Conversation.contact_id).join(
        Message, Message.conversation_id == Conversation.id)))


@pytest.mark.parametrize("provider", ["evolution", "waha"])
def test_a_lid_alone_and_then_with_its_phone_is_one_contact(
        sessions: sessionmaker[Session], numbers: dict[str, Instance], tmp_path: Path,
        provider: str) -> None:
    c = Customer(3)
    rules, inst = _rules(tmp_path), numbers[provider]
    if provider == "evolution":
        alone = fe.message(_id(), c.lid, "oi", addressingMode="lid")
        told = fe.message(_id(), c.lid, "sou eu", remoteJidAlt=f"{c.phone13}@s.whatsapp.net")
        later = fe.message(_id(), f"{c.phone12}@s.whatsapp.net", "de novo")
    else:
        alone = fw.message(_id(), c.lid, "oi")
        told = fw.message(_id(), c.lid, "sou eu", _data={
            "key": {"remoteJid": c.lid, "senderPn": f"{c.phone13}@s.whatsapp.net",
                    "fromMe": False, "id": "X"}, "message": {"conversation": "sou eu"}})
        later = fw.message(_id(), f"{c.phone13}@c.us", "de novo")
    for body in (alone, told, later):
        assert inbound.handle(sessions, inst, _events(provider, body, inst), rules).stored == 1
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 1
        assert s.scalar(select(func.count()).select_from(Conversation)) == 1
        assert _all_messages_on_one_contact(s) == _contact_ids(s, c)
        kinds = set(s.execute(select(ContactIdentity.kind, ContactIdentity.value)).tuples())
        assert kinds == {("lid", c.lid), ("phone", c.phone13)}
        assert s.scalar(select(Contact.phone)) == c.phone13


def _media_bodies(provider: str, c: Customer) -> tuple[bytes, bytes]:
    """An image and a voice note from the customer, as the gateway posts them."""
    if provider == "evolution":
        image = fe.message(_id(), c.phone13, message={"imageMessage": {
            "mimetype": "image/png", "caption": "", "fileLength": str(len(PNG))},
            "base64": base64.b64encode(PNG).decode()})
        audio = fe.message(_id(), c.phone13, message={"audioMessage": {
            "mimetype": "audio/ogg; codecs=opus", "ptt": True, "seconds": 3}})
        return image, audio
    if provider == "waha":
        chat = f"{c.phone13}@c.us"
        image = fw.message(_id(), chat, "", hasMedia=True, media={
            "url": "http://127.0.0.1:9/api/files/default/a.png", "mimetype": "image/png",
            "filename": None, "error": None},
            _data={"message": {"imageMessage": {"mimetype": "image/png"}}})
        audio = fw.message(_id(), chat, "", hasMedia=True, media={
            "url": "http://127.0.0.1:9/api/files/default/a.oga",
            "mimetype": "audio/ogg; codecs=opus", "filename": None, "error": None},
            _data={"message": {"audioMessage": {"mimetype": "audio/ogg; codecs=opus",
                                                "ptt": True}}})
        return image, audio
    image = fc.message(f"wamid.{_id()}", c.phone12, type="image",
                       image={"id": "111", "mime_type": "image/png"})
    audio = fc.message(f"wamid.{_id()}", c.phone12, type="audio",
                       audio={"id": "222", "mime_type": "audio/ogg", "voice": True})
    return image, audio


@pytest.mark.parametrize("provider", ["evolution", "waha", "cloud"])
def test_an_image_and_an_audio_10ms_apart_from_a_new_contact_are_one_contact(
        sessions: sessionmaker[Session], numbers: dict[str, Instance], tmp_path: Path,
        provider: str) -> None:
    rules, inst = _rules(tmp_path), numbers[provider]
    customers = [Customer(10 + k) for k in range(4)]  # a few rounds: a race shows in some
    for c in customers:
        image, audio = _media_bodies(provider, c)
        events = [_events(provider, b, inst) for b in (image, audio)]
        errors: list[BaseException] = []
        gate = threading.Barrier(2)

        def post(evs: list[Event], delay: float, gate: threading.Barrier,
                 errors: list[BaseException]) -> None:
            try:
                gate.wait()
                time.sleep(delay)
                assert inbound.handle(sessions, inst, evs, rules).stored == 1
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=post, args=(events[0], 0.0, gate, errors)),
                   threading.Thread(target=post, args=(events[1], 0.01, gate, errors))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == len(customers)
        assert s.scalar(select(func.count()).select_from(Conversation)) == len(customers)
        assert s.scalar(select(func.count()).select_from(Message)) == 2 * len(customers)
        for c in customers:
            assert len(_contact_ids(s, c)) == 1
            (contact_id,) = _contact_ids(s, c)
            types = set(s.scalars(select(Message.type).join(
                Conversation, Conversation.id == Message.conversation_id).where(
                Conversation.contact_id == contact_id)))
            assert types == {"image", "voice"}


@pytest.mark.parametrize("provider", ["evolution", "waha"])
def test_a_lid_contact_and_a_phone_contact_become_one_when_a_message_links_them(
        sessions: sessionmaker[Session], numbers: dict[str, Instance], tmp_path: Path,
        provider: str) -> None:
    """WhatsApp tells the @lid first (no phone), the customer also wrote from the phone
    (another contact, nothing linked them yet), then a message tells both: it is stored (not
    refused forever), and the two contacts are one, with every message in one conversation."""
    c = Customer(4)
    rules, inst = _rules(tmp_path), numbers[provider]
    if provider == "evolution":
        bodies = [fe.message(_id(), c.lid, "oi"),
                  fe.message(_id(), f"{c.phone13}@s.whatsapp.net", "pelo telefone"),
                  fe.message(_id(), c.lid, "os dois", remoteJidAlt=f"{c.phone12}@s.whatsapp.net")]
    else:
        bodies = [fw.message(_id(), c.lid, "oi"),
                  fw.message(_id(), f"{c.phone13}@c.us", "pelo telefone"),
                  fw.message(_id(), c.lid, "os dois", _data={
                      "key": {"remoteJid": c.lid, "remoteJidAlt": f"{c.phone13}@s.whatsapp.net",
                              "fromMe": False, "id": "X"},
                      "message": {"conversation": "os dois"}})]
    for body in bodies:
        assert inbound.handle(sessions, inst, _events(provider, body, inst), rules).stored == 1
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 3
        assert s.scalar(select(func.count()).select_from(Contact)) == 1
        assert s.scalar(select(func.count()).select_from(Conversation)) == 1
        assert _all_messages_on_one_contact(s) == _contact_ids(s, c)
        assert s.scalar(select(Contact.phone)) == c.phone13
