"""Personal data out of training text: each kind replaced by a placeholder.

Order matters: longer, more specific patterns (CNPJ, cards) go before shorter ones (CPF, phone).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rag.lexical import fold

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_CNPJ = re.compile(r"\b\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_CPF = re.compile(r"\b\d{3}\.?\d{3}\.?\d{3}-?\d{2}\b")
_PHONE = re.compile(r"(?:\+?55[\s-]?)?\(?\b\d{2}\)?[\s-]?9?\d{4}[\s-]?\d{4}\b")
_CEP = re.compile(r"\b\d{5}-?\d{3}\b")
_ADDRESS = re.compile(
    r"\b(?:rua|r\.|avenida|av\.?|travessa|tv\.|alameda|al\.|rodovia|estrada|praça|praca|"
    r"largo)\s+[^\n,;]{2,60}?,?\s*(?:n[º°o.]?\s*)?\d{1,5}\b(?:[^\n;.]{0,40}?(?:apto?\.?|bloco|"
    r"casa)\s*\w+)?", re.IGNORECASE)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[CARTAO]" if 13 <= len(digits) <= 19 and _luhn(digits) else match.group()


def redact(text: str, names: Iterable[str] = ()) -> str:
    """The text with e-mails, CNPJ, cards, CPF, phones, CEP, addresses and known names replaced."""
    text = _EMAIL.sub("[EMAIL]", text)
    text = _CNPJ.sub("[CNPJ]", text)
    text = _CARD.sub(_card, text)
    text = _CPF.sub("[CPF]", text)
    text = _PHONE.sub("[TELEFONE]", text)
    text = _CEP.sub("[CEP]", text)
    text = _ADDRESS.sub("[ENDERECO]", text)
    for name in sorted({n for n in names if n and len(n.strip()) >= 3}, key=len, reverse=True):
        for part in [name, *[p for p in name.split() if len(p) >= 3]]:
            text = _replace_word(text, part)
    return text


def _replace_word(text: str, word: str) -> str:
    """Replace a name wherever it stands as a word, whatever its case or accents."""
    folded, target = fold(text), fold(word)
    if len(folded) != len(text):  # folding changed lengths (rare ligatures): plain match only
        return re.sub(rf"\b{re.escape(word)}\b", "[NOME]", text, flags=re.IGNORECASE)
    out, pos = [], 0
    for m in re.finditer(rf"\b{re.escape(target)}\b", folded):
        out.append(text[pos:m.start()])
        out.append("[NOME]")
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)
