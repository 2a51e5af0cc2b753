"""Yes/no questions answered "Sim, …" or "Não, …" when the reply's passage text decides them.

"vcs aceitam elo?" answered "Aceitamos cartões Visa, Mastercard e Elo." leaves the customer to
work out the answer; "Sim, aceitamos …" does not. A wrong "Sim" is worse than none, so the
prefix goes only where the text settles it: it names every key term of the question (no "Sim"
to "entrega em sorocaba?" from "Entregamos em todo o Brasil"), and says "Não" only where a
negation stands right before one of them ("Não aceitamos cheques."). Any other negation in the
text, a negation the question has and the text lacks, or a negated term qualified by words the
question lacks ("não oferecemos parcelamento com juros" to "da pra parcelar?") leaves it
undecided: no prefix.
"""

from __future__ import annotations

import re

from rag import lexical
from rag.lexical import fold

_WORD = re.compile(r"\w+")
_CLAUSES = re.compile(r"(?<=[?!.])\s+|[,;\n]\s*")
# Words that make a question open (what, how much, where...) or a choice ("pix ou cartão?").
_OPEN = frozenset("""qual quais quale qto qtos qnto qntos qnt qnts quanto quanta quantos quantas
    quando qdo qndo qnd qd onde aonde cade como cmo pq porque porq quem oq ou""".split())
_OPEN_PAIRS = re.compile(r"\b(?:por|o|em|de|pra|para|a|com) (?:que|q)\b|^(?:que|q)\b"
                         r"|\b(?:que|q) (?:horas?|dia|dias|tipo|tipos)\b")
# How a yes/no question opens when it has no question mark ("tem estacionamento").
_OPENERS = frozenset("""tem tens teria tinha da dah pode podem posso poderia podia consigo
    consegue conseguem eh existe existem ha aceita aceitam aceitariam vcs vc voces voce rola
    sera faz fazem entrega entregam abre abrem funciona funcionam vende vendem trabalha
    trabalham parcela parcelam cobra cobram precisa preciso ja ainda vale inclui cobre atende
    atendem emite emitem""".split())
_GREETING = frozenset("oi ola opa bom boa dia tarde noite eai e ai tudo bem blz".split())
# Verbs that carry the question, not its subject: "vcs fazem entrega em sorocaba?" is decided
# by "entreg" and "sorocab" alone.
_LIGHT = frozenset(lexical.tokens(
    "faz fazem fazer faço pode podem posso podemos poderia podia consigo consegue conseguem "
    "conseguir existe existem rola vai vão possível possivel ainda algum alguma aí ai sim"))
_NEGATIONS = frozenset("nao n nunca nenhum nenhuma jamais nem sem".split())
_STRONG = _NEGATIONS - {"sem"}  # "sem juros" is a feature, not a denial
_QUALIFIERS = frozenset("com acima abaixo ate apenas so somente exceto".split())
_REACH = 3  # words after a negation that it governs
_ANSWERED = re.compile(r"\s*(?:sim|nao)\b\s*[,.!;:]")  # "Sim, ..." "Não. ..."


def is_yes_no(question: str) -> bool:
    """A question answered by yes or no: no open question word, no choice, and a question mark
    or a yes/no opening ("tem estacionamento", "da pra parcelar")."""
    text = fold(question)
    words = _WORD.findall(text)
    if not words or _OPEN.intersection(words) or _OPEN_PAIRS.search(" ".join(words)):
        return False
    if "?" in question:
        return True
    first = next((w for w in _WORD.findall(fold(_asked(question))) if w not in _GREETING), "")
    return first in _OPENERS


def _asked(question: str) -> str:
    """The clause that asks: the last one with a question mark, else the last one."""
    clauses = [c for c in _CLAUSES.split(question) if c.strip()]
    marked = [c for c in clauses if "?" in c]
    return (marked or clauses or [""])[-1]


def verdict(question: str, text: str) -> str | None:
    """"Sim", "Não", or None where the question is no yes/no question or the text does not
    decide it (module docstring)."""
    if not is_yes_no(question):
        return None
    key = set(lexical.tokens(_asked(question), query=True)) - _LIGHT
    if not key or not key <= set(lexical.tokens(text)):
        return None
    asked = _negated(_words(_asked(question), query=True), key)
    said = _negated(_words(text), key)
    if said[1] or asked[0] - said[0]:
        return None  # a negation elsewhere, or the question's own the text lacks
    if said[0] - asked[0]:
        qualified = said[2] - set(_WORD.findall(fold(question)))
        return None if qualified else "Não"
    return "Sim"


def _words(text: str, query: bool = False) -> list[str]:
    out: list[str] = []
    for w in _WORD.findall(fold(text)):
        out += lexical.ABBREVIATIONS.get(w, w).split() if query else [w]
    return [fold(w) for w in out]


def _negated(words: list[str], key: set[str]) -> tuple[set[str], bool, set[str]]:
    """(key terms a negation governs, whether a strong negation governs none, the qualifiers
    right after a negated term)."""
    terms: set[str] = set()
    loose = False
    qualifiers: set[str] = set()
    for i, w in enumerate(words):
        if w not in _NEGATIONS:
            continue
        hit = [j for j in range(i + 1, min(i + 1 + _REACH, len(words)))
               if set(lexical.tokens(words[j])) & key]
        terms |= {t for j in hit for t in lexical.tokens(words[j])} & key
        loose |= not hit and w in _STRONG
        if hit and hit[-1] + 1 < len(words) and words[hit[-1] + 1] in _QUALIFIERS:
            qualifiers.add(words[hit[-1] + 1])
    return terms, loose, qualifiers


def answer(question: str, reply: str) -> str:
    """The reply, opened with "Sim, " or "Não, " where ``verdict`` decides the question (left
    as it is when it opens with either already, or is a question itself: "Sim, posso usar meu
    próprio roteador?" answers nothing)."""
    said = None if _ANSWERED.match(fold(reply)) or reply.rstrip().endswith("?") else \
        verdict(question, reply)
    if said is None:
        return reply
    return f"{said}, {reply[0].lower()}{reply[1:]}" if _common(reply.split()) else \
        f"{said}. {reply}"


def _common(words: list[str]) -> bool:
    """The reply opens with a common word that may go lower case after "Sim, ": not a name
    ("Loja Aurora"), an acronym ("PIX") or a label ("Plano: Turbo")."""
    head = words[0] if words else ""
    return (head[:1].isupper() and (head[1:].islower() or len(head) == 1)
            and not head.endswith(":") and not (len(words) > 1 and words[1][:1].isupper()))
