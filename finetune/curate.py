"""Curation: real conversations into grounded question-answer pairs fit to train on.

Only human agents' replies are targets: anything the assistant, a bot or a flow wrote is out,
and so is an agent reply that merely forwards one. Personal data is replaced by placeholders,
near-duplicates and low-quality pairs are dropped, and every drop is counted by reason.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from finetune.pii import redact

HUMAN = "agent"
CUSTOMER = "customer"
MIN_ANSWER_WORDS = 3
NEAR_DUPLICATE = 0.9  # Jaccard of word trigrams, question and answer together

_WORD = re.compile(r"\w+")
_GREETING = {"oi", "ola", "olá", "bom", "boa", "dia", "tarde", "noite", "tudo", "bem", "obrigado",
             "obrigada", "valeu", "ok", "blz", "beleza", "tchau", "de", "nada", "por", "favor"}
_DONT_KNOW = re.compile(r"\b(n[ãa]o sei|n[ãa]o tenho (essa|esta) informa[çc][ãa]o|"
                        r"desconhe[çc]o|n[ãa]o saberia)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Turn:
    author: str  # customer | agent | assistant | bot | flow | system
    text: str


@dataclass
class Pair:
    question: str
    answer: str
    source: str  # chat | <eval set name>
    conversation: str
    passages: list[str] = field(default_factory=list)
    docs: list[str] = field(default_factory=list)  # the document of each passage


@dataclass
class Report:
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    excluded_messages: Counter[str] = field(default_factory=Counter)  # by author, never used


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def candidate_pairs(conversation: str, turns: Sequence[Turn],
                    report: Report) -> list[Pair]:
    """Customer turns (a burst merged) paired with the human agent reply that follows."""
    pairs: list[Pair] = []
    asked: list[str] = []
    bot_texts: list[str] = []
    for turn in turns:
        if turn.author == CUSTOMER:
            asked.append(turn.text)
        elif turn.author == HUMAN:
            if _forwards(turn.text, bot_texts):
                report.dropped["agent_forwarded_bot_reply"] += 1
            elif asked:
                pairs.append(Pair("\n".join(asked), turn.text, "chat", conversation))
            asked = []
        else:
            # The assistant, a bot, a flow: never a target. The customer's turn stays open, so
            # an agent who takes over after a handoff answers it: the most valuable pairs.
            report.excluded_messages[turn.author] += 1
            bot_texts.append(turn.text)
    return pairs


def _forwards(text: str, bot_texts: Iterable[str]) -> bool:
    mine = set(_words(text))
    return bool(mine) and any(len(mine & set(_words(b))) >= 0.8 * len(mine) for b in bot_texts)


def _quality(pair: Pair) -> str | None:
    """Why a pair is not worth training on, or None."""
    if set(_words(pair.question)) <= _GREETING:
        return "greeting_only"
    if len(_words(pair.answer)) < MIN_ANSWER_WORDS:
        return "answer_too_short"
    if _DONT_KNOW.search(pair.answer):
        return "agent_does_not_know"
    return None


def _shingles(text: str) -> set[tuple[str, ...]]:
    w = _words(text)
    return {tuple(w[i:i + 3]) for i in range(max(len(w) - 2, 1))}


def curate(conversations: Iterable[tuple[str, Sequence[Turn]]], *, names: Iterable[str] = (),
           retrieve: Callable[[str], list[tuple[str, str]]] | None = None,
           extra: Iterable[Pair] = (), held_out: Iterable[str] = ()) -> tuple[list[Pair], Report]:
    """Kept pairs (personal data redacted, passages attached) and the report of what went.

    ``retrieve`` maps a question to (document, passage text) pairs from the knowledge base.
    """
    report = Report()
    names = list(names)
    held = {" ".join(_words(q)) for q in held_out}
    kept: list[Pair] = []
    seen: list[set[tuple[str, ...]]] = []
    candidates = [p for conv, turns in conversations
                  for p in candidate_pairs(conv, turns, report)] + list(extra)
    for pair in candidates:
        # Eval-set answers are short reference spans by design; the quality rules are for chats.
        why = _quality(pair) if pair.source == "chat" else None
        if why is None and " ".join(_words(pair.question)) in held:
            why = "in_eval_dev_or_test"
        pair = Pair(redact(pair.question, names), redact(pair.answer, names), pair.source,
                    pair.conversation, pair.passages, pair.docs)
        sh = _shingles(f"{pair.question} {pair.answer}")
        if why is None and any(len(sh & s) / len(sh | s) >= NEAR_DUPLICATE for s in seen):
            why = "near_duplicate"
        if why is not None:
            report.dropped[why] += 1
            continue
        seen.append(sh)
        if retrieve is not None and not pair.passages:
            found = retrieve(pair.question)
            pair.passages = [redact(text, names) for _, text in found]
            pair.docs = [doc for doc, _ in found]
        kept.append(pair)
    report.kept = len(kept)
    return kept, report
