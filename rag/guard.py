"""Checks on a model's reply before it reaches a customer: echoes, loops, invented numbers."""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable, Sequence

ECHO_WINDOW = 8  # words in a row shared with the instructions that make a reply an echo
_WORD = re.compile(r"\w+")


def _windows(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def echoes_instructions(reply: str, instructions: str) -> bool:
    """The reply repeats the system instructions (a base model copies its prompt back).

    Quoting one passage is a grounded answer, not an echo; runs copied from two or more of the
    prompt's passages are.
    """
    if "Trechos:" in reply or re.search(r"\[\d+\] \(", reply):
        return True
    own, _, passages = instructions.partition("\n\nTrechos:\n")
    mine = _windows(reply, ECHO_WINDOW)
    if mine & _windows(own, ECHO_WINDOW):
        return True
    blocks = re.split(r"\n\n(?=\[\d+\] \()", passages) if passages else []
    return copies_several(reply, blocks)


def copies_several(reply: str, passages: Sequence[str]) -> bool:
    """The reply copies runs of two or more passages. Only runs found in one passage alone
    count: where documents repeat each other, quoting a sentence two passages share is a quote.
    """
    mine = _windows(reply, ECHO_WINDOW)
    found = [mine & _windows(p, ECHO_WINDOW) for p in passages]
    alone = [f.difference(*(g for j, g in enumerate(found) if j != i))
             for i, f in enumerate(found)]
    return sum(bool(a) for a in alone) >= 2


def degenerate(reply: str) -> bool:
    """The reply loops on a few words, as an untuned model does when it loses its way."""
    words = _WORD.findall(reply.lower())
    return len(words) >= 12 and len(set(words)) / len(words) < 0.4


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _value(raw: str) -> str:
    """A number as a canonical string: "1.250" == "1250", "299,00" == "299", "5%" == "5"."""
    if "," in raw or re.fullmatch(r"\d{1,3}(?:\.\d{3})+", raw):  # pt-BR: 1.250,00
        raw = raw.replace(".", "")
    raw = raw.replace(".", ",")
    whole, _, frac = raw.partition(",")
    frac = frac.replace(",", "").rstrip("0")
    return f"{int(whole)},{frac}" if frac else str(int(whole))


def numbers(text: str) -> set[str]:
    """Every number a text states (prices, percentages, days, dates, hours), canonical."""
    return {_value(raw) for raw in _NUMBER.findall(text)}


def ungrounded_numbers(reply: str, grounds: str) -> list[str]:
    """Numbers of the reply that the passages (or the customer) never stated."""
    allowed = numbers(grounds)
    return [raw for raw in _NUMBER.findall(reply) if _value(raw) not in allowed]


def repeats(reply: str, earlier: Sequence[str]) -> bool:
    """The reply says again, word for word, what the assistant already said in the
    conversation: a small model copying its last turn instead of answering the new question."""
    mine = _WORD.findall(reply.lower())
    return bool(mine) and any(_WORD.findall(e.lower()) == mine for e in earlier)


def unfit(reply: str, instructions: str, grounds: str | None = None,
          earlier: Sequence[str] = ()) -> str | None:
    """Why a reply must not be sent, or None when it may.

    ``grounds`` is what the reply may state facts from: the passages and the question. A price,
    percentage, date or deadline found in none of them means the model made it up.
    ``earlier`` are the assistant's replies already in the conversation.
    """
    if not reply.strip():
        return "empty"
    if repeats(reply, earlier):
        return "repeat"
    if echoes_instructions(reply, instructions):
        return "echo"
    if degenerate(reply):
        return "degenerate"
    if grounds is not None and ungrounded_numbers(reply, grounds):
        return "ungrounded_number"
    return None


class Unfit(Exception):
    """A streamed reply turned out unfit; ``sent`` says how much already went out."""

    def __init__(self, reason: str, sent: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sent = sent


HOLD_WORDS = 12  # held back while streaming, so an echo is caught before any of it goes out


def guarded(pieces: Iterable[str], instructions: str, grounds: str | None = None,
            earlier: Sequence[str] = ()) -> Generator[str, None, None]:
    """Pass a streamed reply through, holding back its last words until they are cleared.

    Raises Unfit when the reply copies the instructions, loops, repeats an earlier reply whole
    (judged once it ends), or ends empty.
    """
    buf, sent = "", 0
    source = iter(pieces)
    try:
        for piece in source:
            buf += piece
            problem = unfit(buf, instructions, grounds) if buf.strip() else None
            if problem:
                raise Unfit(problem, sent)
            starts = [m.start() for m in _WORD.finditer(buf)]
            cut = starts[-HOLD_WORDS] if len(starts) > HOLD_WORDS else 0
            if cut > sent:
                yield buf[sent:cut]
                sent = cut
        problem = unfit(buf, instructions, grounds, earlier)
        if problem:
            raise Unfit(problem, sent)
        if buf[sent:]:
            yield buf[sent:]
    finally:  # closed early (the reader hung up, or Unfit): the model stops writing now
        close = getattr(source, "close", None)
        if close is not None:
            close()
