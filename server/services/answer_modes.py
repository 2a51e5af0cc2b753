"""Each knowledge base's answer mode, as the gate chose it, and why.

A fine-tuned small model answers one company's documents better than quoting them and another's
worse (issue #29: 0.57 against 0.68 containment on one shop, 0.42 against 0.39 on an internet
provider), so the mode is chosen per knowledge base, by the gate, on the company's own questions
(``atende models compare``; ``eval.gate.choose_mode``):

- ``model``: the model's reply; one the guard finds unfit hands off;
- ``extraction``: the best passage unit, no model called (the evidence step still refuses);
- ``model+extraction``: the model, an unfit reply replaced by the best passage unit;
- ``model-checked``: the model decides whether to answer (its refusal hands off), the best
  passage unit is the answer.

A knowledge base the gate never judged answers in ``DEFAULT``, the mode the gate chose on the
corpus's dev businesses (docs/knowledge-base.md, "Answer mode"). Choices are rows only added
(``AnswerMode``): the latest of a collection is its mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from eval.answers import CHECKED, MODES
from eval.gate import ModeChoice
from server.schema import AnswerMode

DEFAULT = CHECKED
DEFAULT_REASON = (f"the shipped default, {DEFAULT}: on the corpus's dev businesses the gate "
                  "chose it over the model with extraction as its fallback (0.623 against "
                  "0.532 containment, the same answerable questions refused); on the report "
                  "businesses it holds 0.585 against 0.553 and refuses about as many "
                  "unanswerable questions (53.5% against 54.1%; extraction alone: 44.7%) "
                  "(docs/knowledge-base.md, The shipped default, measured); no gate has judged "
                  "this knowledge base's own questions yet")


@dataclass(frozen=True)
class Mode:
    """How a knowledge base is answered now, and why (``chosen_by``: gate or default)."""

    collection: str
    mode: str
    reason: str
    chosen_by: str
    version: str | None = None
    at: datetime | None = None
    gate: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """As the API and ``--json`` show it."""
        return {"collection": self.collection, "mode": self.mode, "reason": self.reason,
                "chosen_by": self.chosen_by, "version": self.version,
                "at": self.at.isoformat() if self.at else None, "gate": self.gate}


def _latest(s: Session, collection: str) -> AnswerMode | None:
    return s.scalar(select(AnswerMode).where(AnswerMode.collection == collection)
                    .order_by(AnswerMode.id.desc()).limit(1))


def _shown(collection: str, row: AnswerMode | None) -> Mode:
    if row is None:
        return Mode(collection, DEFAULT, DEFAULT_REASON, "default")
    return Mode(collection, row.mode, row.reason, "gate", row.version, row.at, row.gate)


def current(sessions: sessionmaker[Session], collection: str) -> Mode:
    """The mode a knowledge base answers in now, with the reason."""
    with sessions() as s:
        return _shown(collection, _latest(s, collection))


def mode_of(sessions: sessionmaker[Session], collection: str) -> str:
    """Only the mode: what serving reads on every turn (one indexed row)."""
    with sessions() as s:
        row = _latest(s, collection)
        return row.mode if row is not None else DEFAULT


def record(sessions: sessionmaker[Session], collection: str, choice: ModeChoice, *,
           version: str | None, measured: dict[str, Any]) -> Mode:
    """Keep the gate's choice for a knowledge base: the mode, its reason, each rival's verdict
    and what it was measured on (``measured``: the set, split, each mode's figures)."""
    if choice.mode not in MODES:
        raise ValueError(f"unknown answer mode {choice.mode!r}; known: {', '.join(MODES)}")
    with sessions.begin() as s:
        row = AnswerMode(collection=collection, mode=choice.mode, reason=choice.reason,
                         version=version, gate={**choice.as_dict(), **measured})
        s.add(row)
        s.flush()
        return _shown(collection, row)


def listing(sessions: sessionmaker[Session], collections: list[str]) -> list[Mode]:
    """The mode of each of these knowledge bases and of any other the gate has judged."""
    with sessions() as s:
        judged = set(s.scalars(select(AnswerMode.collection).distinct()))
        return [_shown(c, _latest(s, c)) for c in sorted(set(collections) | judged)]
