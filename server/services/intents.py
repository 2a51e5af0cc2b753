"""What a customer's words ask of the service itself, before any knowledge base: a human.

A customer who types "atendente" must reach one. Answered from the documents instead, the
request meets the page that explains how to reach one ("digite atendente"): a loop. Only a
request counts: "quero mudar de operadora" or "tem atendente no sábado?" are questions.
"""

from __future__ import annotations

import re

from flows.text import readings
from rag.lexical import fold

_AGENT = r"(atendentes?|humanos?|operador|pessoa real|pessoa de verdade)"
_A = r"((um|uma|o|a|algum|alguma) )?"
_GREETING = r"(oi|ola|bom dia|boa tarde|boa noite|por favor|pfv|pf|um|uma|o|a)"
_WANTS_HUMAN = [
    # "quero falar com um atendente", "me passa pra um humano", "como falo com atendente?"
    re.compile(rf"\b(falar|fala|falo|conversar|converso|passar|passa|passe|transferir|transfere|"
               rf"transfira)( com| pra| pro| para| p/| ao| a)? {_A}{_AGENT}\b"),
    # "chama um atendente", "quero um atendente", "preciso de um humano"
    re.compile(rf"\b(chamar|chama|chame|quero|queria|preciso|gostaria)( de)? {_A}{_AGENT}\b"),
    # "preciso falar com alguém", "posso conversar com uma pessoa?"
    re.compile(rf"\b(falar|fala|falo|conversar|converso) com {_A}(pessoa|alguem|gente)\b"),
    # the word alone, as the demo shop tells customers to type it: "atendente", "humano!"
    re.compile(rf"^(\W*{_GREETING}\b)*\W*({_AGENT}|atendimento humano)\W*({_GREETING}\b\W*)*$"),
    re.compile(r"\b(talk|speak|chat) (to|with) (a |an )?(human|person|agent|someone|"
               r"representative)\b|^\W*(human|agent)\W*$"),
]
_NOT = re.compile(r"\b(nao|nem|never|not|don't|dont)\b[^.?!,]{0,12}$")  # "não quero falar com..."


def asks_for_human(text: str) -> bool:
    """The customer asks to be served by a person (pt-BR first; English too), in the turn's
    text or in any one message of a burst: "boa tarde, preciso de ajuda" then "atendente"."""
    return any(_asks(reading) for reading in readings(text))


def _asks(text: str) -> bool:
    folded = " ".join(fold(text).split())
    return any(not _NOT.search(folded[:m.start()])
               for p in _WANTS_HUMAN for m in p.finditer(folded))
