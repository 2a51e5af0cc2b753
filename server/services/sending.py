"""What agents and integrations send by hand: a text, a file, or a Cloud API template.

Each goes out through the one reply path (server.engine.replies) with its outbox row and
journey, so it is paced, retried and ordered like every reply. An agent's message pauses the
bot for that conversation: the customer is talking with a person now.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from server.engine import replies
from server.schema import Conversation, utcnow
from server.services import journey, media

FILE_KINDS = {"image": "image", "audio": "audio", "video": "video"}


def kind_of(mime: str) -> str:
    """The message type a file is sent as: image, audio (a voice note), or a document."""
    return FILE_KINDS.get(mime.split("/")[0], "document")


def agent_message(sessions: sessionmaker[Session], conversation_id: int, *, text: str,
                  file: tuple[bytes, str, str | None] | None = None,
                  data_dir: Path, max_bytes: int, user_id: int | None = None) -> int:
    """Queue an agent's message (a file: its bytes, declared MIME type and name); returns its
    outbox id. LookupError for an unknown conversation, media.Refused for a bad file.
    ``user_id``: the agent who wrote it, shown beside it (none: an integration's token)."""
    fields: dict[str, Any] = {"user_id": user_id}
    if file is not None:
        data, mime, filename = file
        kept = media.keep(data_dir, data, mime, max_bytes=max_bytes, filename=filename)
        fields |= {"type": kind_of(kept["mime"]), "media": kept}
    with sessions.begin() as s:
        conv = _conversation(s, conversation_id)
        reply, box = replies.write(s, instance_id=conv.instance_id, conversation_id=conv.id,
                                   text=text, author="agent", **fields)
        replies.queued(s, reply, by="agent")
        agent_answered(conv, utcnow())
        if conv.mode != "human":
            conv.mode = "human"
            journey.record(s, reply.id, "bot_paused", reason="an agent answered")
        return box.id


def agent_answered(conv: Conversation, now: datetime) -> None:
    """An agent wrote (here or on the phone): the bot stops, and a queued conversation is the
    agent's now, so the assistant no longer answers while it waits."""
    if conv.agent_replied_at is None:
        conv.agent_replied_at = now
    if conv.status in ("queued", "open", "closed"):
        conv.status = "assigned"


def template_message(sessions: sessionmaker[Session], conversation_id: int,
                     template: dict[str, Any]) -> int:
    """Queue a Cloud API template (name, language, components); returns its outbox id."""
    with sessions.begin() as s:
        conv = _conversation(s, conversation_id)
        label = f"[template {template['name']}]"
        reply, box = replies.write(s, instance_id=conv.instance_id, conversation_id=conv.id,
                                   text=label, author="agent", type="template",
                                   media={"template": template})
        replies.queued(s, reply, by="agent", template=template["name"])
        return box.id


def _conversation(s: Session, conversation_id: int) -> Conversation:
    conv = s.get(Conversation, conversation_id)
    if conv is None:
        raise LookupError(f"no conversation {conversation_id}")
    return conv
