"""Voice notes in a turn: what the customer said, as text, for a flow's menu or question and
for the assistant.

A voice note is transcribed through the configured OpenAI-compatible endpoint
(``server.services.transcribe``) and the transcript is kept beside the audio, where agents see
it. With no endpoint, or when transcription fails, the turn goes to a person: the customer is
told once per conversation that audio is heard by the team, and nothing of the note is lost.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway_bridge import SendError
from server.engine import replies
from server.engine.handoff import leave_to_humans
from server.engine.turn import Turn
from server.runtime import Runtime
from server.schema import Conversation, Message, utcnow
from server.services import journey, media, queues, transcribe

log = logging.getLogger(__name__)
VOICE = ("audio", "voice")
AUDIO_TO_PEOPLE = ("Recebi seu áudio! Por aqui eu só consigo ler mensagens de texto, então uma "
                   "pessoa da nossa equipe vai ouvir e te responder.")


def hear(rt: Runtime, sessions: sessionmaker[Session], turn: Turn) -> tuple[Turn, int | None]:
    """The turn with its voice notes' transcripts; or, when one cannot be heard, the turn
    handed to people: then ``(turn with no pending, outbox id of the notice or None)``."""
    notes = [m for m in turn.pending if m.type in VOICE and m.transcript is None]
    if not notes:
        return turn, None
    heard: dict[int, str] = {}
    for note in notes:
        text = _transcribe(rt, sessions, note)
        if text is None:
            return replace(turn, pending=[]), _to_people(rt, sessions, turn)
        heard[note.id] = text
    with sessions.begin() as s:
        for msg_id, text in heard.items():
            s.get_one(Message, msg_id).transcript = text
            journey.record(s, msg_id, "transcribed", chars=len(text))
    for note in notes:  # the claimed rows are detached copies: the turn reads the words here
        note.transcript = heard[note.id]
    return turn, None


def _transcribe(rt: Runtime, sessions: sessionmaker[Session], note: Message) -> str | None:
    if not transcribe.enabled(rt.settings):
        return None
    state = (note.media or {}).get("state")
    try:
        if state == "waiting":
            state = media.fetch(rt.http, sessions, rt.settings.data_dir, note.id,
                                max_bytes=rt.settings.media_max_bytes)
        if state != "stored":
            raise transcribe.TranscribeError(f"the audio file is {state}")
        with sessions() as s:
            file = dict(s.get_one(Message, note.id).media or {})
        audio = media.path_of(rt.settings.data_dir, str(file["sha256"])).read_bytes()
        return transcribe.transcribe(rt.settings, audio, mime=str(file.get("mime", "audio/ogg")),
                                     filename=str(file.get("filename") or "audio.ogg"),
                                     http=rt.http)
    except (transcribe.TranscribeError, SendError, OSError) as exc:
        reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
        with sessions.begin() as s:
            journey.record(s, note.id, "not_transcribed", reason=reason)
        log.warning("voice note %d not transcribed: %s", note.id, reason)
        return None


def _to_people(rt: Runtime, sessions: sessionmaker[Session], turn: Turn) -> int | None:
    """Hand the conversation to people, telling the customer once that audio goes to them."""
    with sessions.begin() as s:
        conv = s.get_one(Conversation, turn.conversation_id)
        told = s.scalar(select(Message.id).where(
            Message.conversation_id == conv.id, Message.direction == "out",
            Message.text == AUDIO_TO_PEOPLE).limit(1))
        if conv.mode != "human":
            queues.hand_off(s, rt.settings, conv, team=None, now=utcnow())
        box = None
        if told is None:
            last = turn.pending[-1]
            reply, out = replies.write(s, instance_id=turn.instance.id,
                                       conversation_id=conv.id, text=AUDIO_TO_PEOPLE,
                                       author="system", reply_to_id=last.id)
            replies.queued(s, reply, reason="audio_to_people")
            box = out.id
    leave_to_humans(sessions, turn.pending, "handed_off", reason="audio not transcribed")
    return box
