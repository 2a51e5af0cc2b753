"""Follow-up questions in AI mode: "e pro sul?" asked right after "qual o prazo de entrega pro
norte?" is rewritten into the standalone question it means, before retrieval and the model.

A fine-tuned version is shown no earlier turn (it was trained on single questions), so without
this the follow-up is searched on its own, finds nothing, and is refused. The rewrite is
deterministic and cheap: an elliptic follow-up (it starts with "e", "and", or is a bare
"e o/a ..." of a few words) borrows the previous customer question, with the follow-up's
phrase put where the same kind of phrase stood ("pro norte" becomes "pro sul", "a entrega
expressa" becomes "o frete"), or appended when no such phrase exists. Anything longer is a
question of its own and is left as it is.

``key`` is the form under which a session remembers a question it answered, so the same
question asked again is answered from the stored reply.
"""

from __future__ import annotations

import re

from models.base import ChatMessage
from rag.lexical import fold, tokens

_LEAD = re.compile(r"^\s*(e|and|mas e|tambem|e quanto a|e sobre)\s+", re.I)
# Words that lead the same kind of phrase: "e pra Curitiba?" replaces "pro Rio", "e a
# blusa?" replaces "o vestido".
_KINDS = (("para o", "para a", "para os", "para as", "pra", "pro", "pros", "pras", "para"),
          ("no", "na", "nos", "nas", "em"), ("do", "da", "dos", "das", "de"),
          ("pelo", "pela", "por"), ("com",), ("sem",), ("o", "a", "os", "as", "um", "uma"))
MAX_WORDS = 6


def standalone(text: str, history: list[ChatMessage]) -> str:
    """The question ``text`` means, given the session's ``history`` (oldest first)."""
    text = text.strip()
    lead = _LEAD.match(fold(text))
    if not lead or len(text.split()) > MAX_WORDS:
        return text
    previous = next((m["content"] for m in reversed(history) if m["role"] == "user"
                     and not _LEAD.match(fold(m["content"]))), None)
    if not previous:
        return text
    rest = text[lead.end():].strip().rstrip("?!. ")
    if not rest:
        return text
    base = previous.strip().rstrip("?!. ")
    folded_rest = fold(rest)
    for kind in _KINDS:
        if any(folded_rest.startswith(word + " ") for word in kind):
            # the last phrase of that kind in the earlier question, up to its end or a comma
            words = "|".join(re.escape(w) for w in kind)
            hits = list(re.finditer(rf"\b(?:{words})\s+[^,;?!.]+$", fold(base)))
            if hits:
                return f"{base[:hits[0].start()]}{rest}?"
            break
    return f"{base} {rest}?"


def key(question: str) -> str:
    """A question's memory key: its stemmed terms, in order; empty for small talk."""
    return " ".join(tokens(question, query=True))[:300]
