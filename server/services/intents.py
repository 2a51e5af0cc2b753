"""What a customer's words ask of the service itself, before any knowledge base: a human.

A customer who types "atendente" must reach one. Answered from the documents instead, the
request meets the page that explains how to reach one ("digite atendente"): a loop.
"""

from __future__ import annotations

import re

from rag.lexical import fold

_AGENT = r"(atendentes?|humanos?|humanas?|operador(a|es)?|pessoa real|pessoa de verdade)"
_ASK = (r"(falar|fala|falo|conversar|converso|chamar|chama|chame|passar|passa|passe|"
        r"transferir|transfere|transfira|quero|queria|preciso|gostaria)")
_GREETING = r"(oi|ola|bom dia|boa tarde|boa noite|por favor|pfv|pf|um|uma|o|a)"
_WANTS_HUMAN = [
    # "quero falar com um atendente", "me passa pra um humano", "como falo com atendente?"
    re.compile(rf"\b{_ASK}\b[^.?!]{{0,25}}\b{_AGENT}\b"),
    # "preciso falar com alguém", "posso conversar com uma pessoa?"
    re.compile(r"\b(falar|fala|falo|conversar|converso) com (uma |um |alguma |algum )?"
               r"(pessoa|alguem|gente)\b"),
    # the word alone, as the demo shop tells customers to type it: "atendente", "humano!"
    re.compile(rf"^(\W*{_GREETING}\b)*\W*({_AGENT}|atendimento humano)\W*({_GREETING}\b\W*)*$"),
    re.compile(r"\b(talk|speak|chat) (to|with) (a |an )?(human|person|agent|someone|"
               r"representative)\b|^\W*(human|agent)\W*$"),
]


def asks_for_human(text: str) -> bool:
    """The customer asks to be served by a person (pt-BR first; English too)."""
    folded = " ".join(fold(text).split())
    return any(p.search(folded) for p in _WANTS_HUMAN)
