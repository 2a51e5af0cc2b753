"""Answer units: what the extractive answer quotes, the focused prompt shows, and training
targets are cut from.

Two layouts, because a model is served the units it was trained on:

- ``SENTENCES``: sentences, with table rows and list items as sentences of their own (every
  version up to faquad-v5 was trained on these).
- ``STRUCTURED``: prose still gives its sentences, but a list item alone ("Campinas: Rua X,
  100") does not say what it is, and its lead-in ("Temos três lojas físicas:") answers nothing:
  each item carries its lead-in. A table row's cells mean nothing without their columns: each
  row carries its header ("Plano: Turbo; Preço: R$ 99,90"), and the header row alone is never a
  unit. Where the question asks for the list ("quais as formas de pagamento?"), the lead-in
  comes with its items as one unit instead.

HTML and DOCX lists and tables reach here as Markdown (``rag.parsing``): items as ``- `` lines
separated by blank lines, tables as ``|`` rows under a separator row; both give the same units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from rag.lexical import fold

SENTENCES = "sentences"
STRUCTURED = "structured"
LAYOUTS = (SENTENCES, STRUCTURED)
_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\n+")
_IN_LINE = re.compile(r"(?<=[.!?…])\s+")
_RULE = set("-|: ")  # what a Markdown table's separator row is made of
CLAUSE = re.compile(r"(?<=[,;:])\s+")
_ITEM = re.compile(r"^\s*(?:[-*+•◦▪‣–]|\d{1,2}[.)])\s+")
_ENDS = (".", "!", "?", "…", ";")
# A list asked for whole: "quais ...", "q formas de pagamento", "lista de ...", "todas as ...".
_ASKS_LIST = re.compile(
    r"\b(?:quais|quaes|qais|lista|listar|liste|relacao|todas as|todos os|quantas e quais"
    r"|quantos e quais|(?:que|q) (?:tipos|formas|opcoes|bandeiras|cartoes|lojas|planos"
    r"|servicos|produtos|cidades|regioes|marcas|modelos|unidades|documentos))\b")
# A question asking for a number: how much, how many, how long, until when, at what time, which
# price, deadline, rate, phone ("qnto custa", "qts dias", "ate qnd", "qual o whats"); folded.
_ASKS_NUMBER = re.compile(
    r"\b(?:quant[oa]s?|quantidade|qu?nt[oa]?s?|qt[oa]?s?|qn?td|ate quando|ate qnd|que horas"
    r"|que dia|qual dia|custa|custo|valor|preco|prazo|desconto|taxa|multa|juros|horario"
    r"|telefone|fone|numero|whats|whatsapp|porcento|por cento)\b")
_DIGIT = re.compile(r"\d")
# A list unit holds at most this many words: a reply is scored within 40 (eval.scoring).
LIST_WORDS = 40


@dataclass(frozen=True)
class Unit:
    text: str
    kind: str = "sentence"  # or "item" (with its lead-in), "row" (with its header), "list"
    lead: str = ""  # the lead-in an item carries, at the start of ``text``
    asked: str = ""  # the FAQ question it answers: ranked with it, never shown or quoted

    @property
    def whole(self) -> bool:
        """Cutting it to a clause would lose what it is about (an item's lead-in, a row's
        column names, a list's items)."""
        return self.kind != "sentence"


def sentences(text: str) -> list[str]:
    """Sentences of a passage; table rows and list items count as sentences (``SENTENCES``)."""
    return [s for s in map(clean, _SENTENCE.split(text)) if _enough(s)]


def clean(sentence: str) -> str:
    """Markdown emphasis and table, list and heading marks off."""
    return sentence.replace("**", "").replace("__", "").strip(" \t|-*#")


def _enough(s: str) -> bool:
    """Three words at least, and not a table's separator row."""
    return len(s.split()) >= 3 and not set(s) <= _RULE


def headers(text: str) -> set[str]:
    """The header rows of a passage's Markdown tables, as ``sentences`` gives them."""
    lines = text.splitlines()
    return {clean(row) for row, below in zip(lines, lines[1:], strict=False)
            if row.lstrip().startswith("|") and separator(below)}


def separator(line: str) -> bool:
    """A Markdown table's separator row (``|---|:---:|``), which makes the row above a header."""
    return bool(line.strip()) and "-" in line and set(line.strip()) <= _RULE


def asks_for_list(question: str) -> bool:
    """The question asks for a whole list ("quais lojas vcs tem", "quais as formas de
    pagamento?"), so a list's lead-in with its items answers it, and one item does not."""
    return bool(_ASKS_LIST.search(fold(question)))


def asks_for_number(question: str) -> bool:
    """The question asks for a number (a price, a count, a deadline, a time, a phone), so a
    unit that holds none is unlikely to answer it."""
    return bool(_ASKS_NUMBER.search(fold(question)))


def has_number(text: str) -> bool:
    return bool(_DIGIT.search(text))


def of(text: str, question: str = "", layout: str = SENTENCES, heading: str = "") -> list[Unit]:
    """The units of a passage in ``layout``, for a question (a list question gets whole lists).
    A list that opens the passage with no lead-in ("## Transportadoras" over "- Correios ...",
    or its lead-in left in the passage before) takes the passage's last ``heading`` (a heading
    path, as ``Passage.heading``) as its lead-in."""
    if layout == SENTENCES:
        return [Unit(s) for s in sentences(text)]
    if layout != STRUCTURED:
        raise ValueError(f"units: unknown layout {layout!r}; use one of {LAYOUTS}")
    whole_lists = asks_for_list(question)
    out: list[Unit] = []
    blocks = _blocks(text.splitlines())
    asked = ""
    for n, (kind, lines, lead) in enumerate(blocks):
        if kind == "list" and not lead and n == 0 and heading.strip():
            lead = clean(heading.split(" > ")[-1]).rstrip(":") + ":"
        if kind == "prose" and _asks(lines[0]) and n + 1 < len(blocks):
            asked = clean(lines[0])  # a FAQ's question: its answer follows
            continue
        if kind == "prose":
            out += _prose(lines[0], asked)
        else:
            got = _rows(lines) if kind == "table" else _list(lines, lead, whole_lists)
            out += [replace(u, asked=asked) for u in got]
        asked = ""
    return out


def _asks(line: str) -> bool:
    """A line of questions only ("**Posso trocar de plano?**"): a FAQ's question. It answers
    nothing, and quoted it reads as the customer's own question asked back, so it is no unit:
    the answer below carries it (``Unit.asked``) to be ranked with."""
    said = [clean(s) for s in _IN_LINE.split(line.strip()) if clean(s)]
    return bool(said) and all(s.endswith("?") for s in said)


def _prose(line: str, asked: str) -> list[Unit]:
    """A prose line's sentences. A question among them ("Sua empresa quer o convênio? Escreva
    para ...") is no unit either: the sentences after it carry it. An answer's short opening
    ("Não.", "Sim, claro.") stays with the sentence after it, which it decides. A line in
    capitals with no stop ("FARMACIA POPULAR NA BEM-ESTAR", a PDF's heading) is a title."""
    out: list[Unit] = []
    short = ""
    for s in map(clean, _IN_LINE.split(line.strip())):
        if s.endswith("?"):
            asked, short = s, ""
            continue
        s = f"{short} {s}".strip() if asked else s
        short = s if asked and len(s.split()) < 3 else ""
        if not short and _enough(s) and not _title(s):
            out.append(Unit(s, asked=asked))
    return out


def _title(s: str) -> bool:
    return s.isupper() and not s.endswith(_ENDS) and len(s.split()) <= 8


def _blocks(lines: list[str]) -> list[tuple[str, list[str], str]]:
    """(kind, lines, lead-in) runs: "table" rows, "list" items (blank lines between items, as
    HTML and DOCX give them, keep one list), "prose" lines one at a time. A list's lead-in is
    the last sentence of the prose line just above it, when it ends in ":" or in no stop; it
    is then carried by the items and not a unit of its own."""
    out: list[tuple[str, list[str], str]] = []
    for line in lines:
        kind = ("table" if line.lstrip().startswith("|") else "list" if _ITEM.match(line)
                else "prose" if line.strip() else "blank")
        last = out[-1] if out else None
        if kind == "blank":
            if last and last[0] not in ("list", "blank"):
                out.append(("blank", [], ""))
            continue
        if last and kind == last[0] and kind != "prose":
            last[1].append(line)
            continue
        lead = ""
        if kind == "list":
            prose = out[-2] if last and last[0] == "blank" and len(out) > 1 else last
            if prose and prose[0] == "prose":
                lead = _lead_in(prose[1][0])
                if lead:
                    _drop_last_sentence(prose)
        out.append((kind, [line], lead))
    return [b for b in out if b[0] != "blank" and b[1]]


def _lead_in(line: str) -> str:
    last = clean(_IN_LINE.split(line.strip())[-1])
    if not last or last.endswith(_ENDS):
        return ""
    return last if last.endswith(":") else last + ":"


def _drop_last_sentence(block: tuple[str, list[str], str]) -> None:
    rest = _IN_LINE.split(block[1][0].strip())[:-1]
    block[1][:] = [" ".join(rest)] if rest else []


def _rows(lines: list[str]) -> list[Unit]:
    """Each row with its column names ("Plano: Turbo; Preço: R$ 99,90"); without a separator
    row there is no header, and rows are sentences as ``SENTENCES`` gives them."""
    cells = [[clean(c) for c in line.strip().strip("|").split("|")] for line in lines]
    if len(lines) < 2 or not separator(lines[1]):
        return [Unit(s) for s in map(clean, lines) if _enough(s)]
    names = cells[0]
    out = []
    for row in cells[2:]:
        pairs = [f"{n}: {c}" if n and n != c else c
                 for n, c in zip(names + [""] * len(row), row, strict=False) if c]
        text = "; ".join(pairs)
        if _enough(text):
            out.append(Unit(text, "row"))
    return out


def _list(lines: list[str], lead: str, whole_list: bool) -> list[Unit]:
    """Each item with its lead-in; or, for a question asking for the list, the lead-in with as
    many items as fit in LIST_WORDS words, as one unit."""
    items = [clean(_ITEM.sub("", line)).rstrip(";,.").strip() for line in lines]
    items = [i for i in items if i]
    if whole_list and len(items) > 1:
        text = lead
        for n, item in enumerate(items):
            longer = f"{text}{'; ' if n else ' '}{item}".strip()
            if len(longer.split()) > LIST_WORDS:
                return [Unit(text + "…", "list")] if n else _items(items, lead)
            text = longer
        return [Unit(text + ".", "list")]
    return _items(items, lead)


def _items(items: list[str], lead: str) -> list[Unit]:
    out = []
    for item in items:
        text = f"{lead} {item}".strip()
        if _enough(text):
            out.append(Unit(text if text.endswith(_ENDS) else text + ".",
                            "item" if lead else "sentence", lead))
    return out


def pieces(sentence: str, max_words: int) -> list[str]:
    """The sentence, or when longer than ``max_words`` words, runs of its clauses that fit
    (a single clause too long is cut by words)."""
    if len(sentence.split()) <= max_words:
        return [sentence]
    out: list[str] = []
    run: list[str] = []
    for clause in CLAUSE.split(sentence):
        words = clause.split()
        if run and len(run) + len(words) > max_words:
            out.append(" ".join(run))
            run = []
        while len(words) > max_words:
            out.append(" ".join(words[:max_words]))
            words = words[max_words:]
        run += words
    return out + ([" ".join(run)] if run else [])


def shown(unit: Unit, max_words: int) -> list[str]:
    """What a unit is shown as in a focused prompt of items of at most ``max_words`` words: a
    long item's lead-in cut to its last clause first, so the item keeps saying what it is,
    then ``pieces``. A whole list (at most LIST_WORDS words) is shown whole."""
    text = unit.text
    if unit.kind == "list":
        return [text]
    if unit.lead and len(text.split()) > max_words:
        text = f"{CLAUSE.split(unit.lead)[-1]}{text[len(unit.lead):]}"
    return pieces(text, max_words)
