"""Messages sent from the number itself (``from_me``): our own sends echoed back, and what an
agent types on the phone.

Gateways post both like any message. An echo must not be stored twice (it is our outbound
message, matched by the id its send returned or, when the echo beats the send's answer, by the
send in flight to the same chat with the same text); a message typed on the phone is the
agent's reply, stored as such, and it pauses the bot for that contact.

An echo of a send in flight also settles that send: the gateway shows it went out. A send whose
answer never came (a timeout after the gateway had taken it) is otherwise tried again, and the
customer gets the same reply twice. One whose last try timed out was given up on, though it may
have gone: its echo records it as sent, so it is not replayed from the dead letters, and it is
not taken for an agent typing on the phone, which would pause the bot.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway_bridge import InboundMessage
from server.schema import Conversation, Message, Outbox
from server.services import contacts, journey, sending, statuses

if TYPE_CHECKING:
    from server.services.inbound import Receiving, Rules


def from_phone(sessions: sessionmaker[Session], instance: Receiving, ev: InboundMessage,
               rules: Rules) -> bool:
    """A message sent from the number itself. Our own send echoed back gets an ``echo`` step
    on its message; one typed on the phone is stored as the agent's reply and pauses the bot
    for the contact. Returns True when something new was stored."""
    with sessions.begin() as s:
        ours = _ours(s, instance.id, ev)
        if ours is not None:
            journey.record(s, ours, "echo", provider_id=ev.provider_message_id)
        settled = ours is not None and statuses.taken(s, ours, ev.provider_message_id,
                                                      "its echo showed")
    if settled:
        statuses.settle(sessions, instance.id, ev.provider_message_id)
    if ours is not None:
        return False
    contact_id = contacts.resolve(sessions, phone=ev.phone, lid=ev.lid, name=None,
                                  address=ev.sender)
    conv_id = contacts.conversation_for(sessions, contact_id, instance.id, ev.sender)
    from server.services.inbound import file_of  # inbound calls us

    file, _ = file_of(ev, rules)
    try:
        with sessions.begin() as s:
            msg = Message(instance_id=instance.id, conversation_id=conv_id, direction="out",
                          author="agent", provider_message_id=ev.provider_message_id,
                          text=ev.text, type=ev.type, media=file, status="sent",
                          sent_at=ev.timestamp)
            s.add(msg)
            s.flush()
            journey.record(s, msg.id, "sent_from_phone", provider_id=ev.provider_message_id)
            conv = s.get_one(Conversation, conv_id)
            old = ev.backlog or ev.timestamp < datetime.now(UTC) - rules.stale_after
            if not old:  # history from the phone pauses nothing now
                sending.agent_answered(conv, ev.timestamp)
            if conv.mode != "human" and not old:
                conv.mode = "human"
                journey.record(s, msg.id, "bot_paused",
                               reason="an agent answered from the phone")
    except IntegrityError:
        return False  # delivered again, or our send recorded its id meanwhile
    return True


def _ours(s: Session, instance_id: int, ev: InboundMessage) -> int | None:
    """Our outbound message this echo is of: by the id its send returned, or, when the echo
    beats the send's answer, the send we tried to the same chat with the same text: in flight,
    waiting to be tried again, or given up on lately after its last try (``statuses.unsure``)."""
    known = s.scalar(select(Message.id).where(
        Message.instance_id == instance_id, Message.direction == "out",
        Message.provider_message_id == ev.provider_message_id))
    if known is not None:
        return known
    return s.scalar(
        select(Message.id).join(Outbox, Outbox.message_id == Message.id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.instance_id == instance_id, statuses.unsure(),
               Conversation.address == ev.sender,
               Message.text == ev.text)
        .order_by(Message.id).limit(1))
