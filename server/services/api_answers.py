"""The assistant behind the OpenAI-compatible API: the same policy as a customer's turn, whole
or streamed, with its usage recorded as ``api``.

A stream cannot take back what it sent, so the guard reads it as it is written: a reply found
unfit before any of it went out is replaced by the extractive answer, as a whole reply would be
(``assistant.answer``); one found unfit later is cut off (``content_filter``).
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from eval.answers import CHECKED, EXTRACTION
from models.base import ChatMessage, Completion, ModelError
from rag import guard
from server.runtime import Runtime
from server.services import assistant, budget


@dataclass(frozen=True)
class Piece:
    """Part of a streamed reply; the last one has no text and says why it ended."""

    model: str
    text: str | None
    finish: str | None = None


NO_MODEL = "atende"  # the name a reply no model wrote goes out under (a refusal, small talk)


def written_by(ans: assistant.Answer) -> str:
    """The ``model`` an API reply names: the version that wrote it; ``extraction`` where a
    passage unit is the reply (extraction mode, model-checked mode, where the model only
    decided, and a model's reply the guard replaced), though a model's tokens may have been
    spent (``usage``); ``atende`` where no model was asked."""
    if ans.completion is None:
        return NO_MODEL
    if ans.reason == "checked" or (ans.reason.startswith("guard_") and not ans.handoff):
        return EXTRACTION
    return ans.completion.model


def answer(rt: Runtime, sessions: sessionmaker[Session], question: str,
           history: list[ChatMessage], use: assistant.Use) -> assistant.Answer:
    """A whole reply, its tokens and cost recorded against the budgets."""
    ans = assistant.answer(rt, sessions, question, history, use)
    if ans.completion and ans.spec:
        with sessions.begin() as s:
            budget.record(s, spec=ans.spec, done=ans.completion, purpose="api")
    return ans


def stream(rt: Runtime, sessions: sessionmaker[Session],
           p: assistant.Prepared | assistant.Answer) -> Generator[Piece, None, None]:
    """The reply as the first model of the chain writes it (a stream cannot switch models
    half-way), guarded; its usage is recorded once it ends."""
    if isinstance(p, assistant.Prepared) and p.mode == CHECKED:
        p = assistant.checked(rt, p)  # the model only decides
    if isinstance(p, assistant.Answer):  # no model to stream from (one may have decided)
        yield Piece(written_by(p), p.text)
        yield Piece(written_by(p), None, "stop")
        if p.completion and p.spec:
            with sessions.begin() as s:
                budget.record(s, spec=p.spec, done=p.completion, purpose="api")
        return
    spec, provider = p.chain[0]
    said = p.said
    text, finish = "", "stop"
    try:
        with closing(guard.guarded(
                provider.stream(p.messages, max_tokens=p.use.max_tokens,
                                temperature=p.use.temperature),
                p.messages[0]["content"], p.grounds, said)) as pieces:
            for piece in pieces:
                text += piece
                yield Piece(spec.name, piece)
    except (guard.Unfit, ModelError) as exc:
        if not text:
            text = assistant.fallback(rt, p, said) or assistant.MODEL_DOWN
            yield Piece(spec.name, text)
        finish = "stop" if not isinstance(exc, guard.Unfit) or not exc.sent else "content_filter"
    finally:  # whole, cut off, or closed because the client hung up: what was spent is charged
        prompt_tokens = sum(provider.count_tokens(m["content"]) for m in p.messages)
        done = Completion(text, finish, prompt_tokens, provider.count_tokens(text), spec.name)
        with sessions.begin() as s:
            budget.record(s, spec=spec, done=done, purpose="api")
    yield Piece(spec.name, None, finish)
