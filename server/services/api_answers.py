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
from models.spec import ModelSpec
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
        _charge(sessions, ans.spec, ans.completion)
    return ans


def stream(rt: Runtime, sessions: sessionmaker[Session],
           p: assistant.Prepared | assistant.Answer) -> Generator[Piece, None, None]:
    """The reply as the first model of the chain writes it (a stream cannot switch models
    half-way), guarded. What a model spent is recorded however the reply ends: whole, cut
    off by the guard, or closed because the client hung up (the model-checked decision is
    paid for before the first piece goes out)."""
    if isinstance(p, assistant.Prepared) and p.mode == CHECKED:
        p = assistant.checked(rt, p)  # the model only decides
    if isinstance(p, assistant.Answer):  # no model to stream from (one may have decided)
        try:
            yield Piece(written_by(p), p.text)
            yield Piece(written_by(p), None, "stop")
        finally:
            if p.completion and p.spec:
                _charge(sessions, p.spec, p.completion)
        return
    spec, provider = p.chain[0]
    said, written = p.said, list[str]()
    text, finish = "", "stop"
    try:
        model = _counted(provider.stream(p.messages, max_tokens=p.use.max_tokens,
                                         temperature=p.use.temperature), written)
        with closing(guard.guarded(model, p.messages[0]["content"], p.grounds,
                                   said)) as pieces:
            for piece in pieces:
                text += piece
                yield Piece(spec.name, piece)
    except (guard.Unfit, ModelError) as exc:
        if not text:
            text = assistant.fallback(rt, p, said) or assistant.MODEL_DOWN
            yield Piece(spec.name, text)
        finish = "stop" if not isinstance(exc, guard.Unfit) or not exc.sent else "content_filter"
    finally:  # the tokens the model wrote, the words the guard held back and cut included
        prompt_tokens = sum(provider.count_tokens(m["content"]) for m in p.messages)
        _charge(sessions, spec, Completion(text, finish, prompt_tokens,
                                           provider.count_tokens("".join(written)), spec.name))
    yield Piece(spec.name, None, finish)


def _counted(pieces: Generator[str, None, None],
             into: list[str]) -> Generator[str, None, None]:
    """The model's pieces, each kept in ``into`` as it passes; closed with the model's."""
    with closing(pieces):
        for piece in pieces:
            into.append(piece)
            yield piece


def _charge(sessions: sessionmaker[Session], spec: ModelSpec, done: Completion) -> None:
    with sessions.begin() as s:
        budget.record(s, spec=spec, done=done, purpose="api")
