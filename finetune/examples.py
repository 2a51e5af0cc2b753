"""Curated pairs into training prompts, exactly as serving builds them (``rag.prompt.build``).

Each pair gives an answer example: its passages plus the most similar passages of other pairs,
target = the clause of the passage unit that holds the answer (short, units of measure kept; a
list item with its lead-in or a table row with its header whole, as ``rag.units`` cuts them for
serving), or in a focused prompt the whole item that holds it. A measured share
of pairs also gives a refusal example: the most similar passages that lack the answer (hard
negatives), target = ``models.spec.REFUSAL``. A pair with no answer (an eval set's out-of-scope
question, ``finetune.evalsets``) gives only a refusal, on the passages it came with. A slice of
pairs is held out, with both kinds, to calibrate the refusal threshold on data the model never
saw.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from finetune.curate import Pair
from models.base import ChatMessage
from models.spec import REFUSAL
from rag import extractive, lexical, prompt, units
from rag.embedders import Embedder
from rag.index import Passage
from rag.lexical import fold

_WORD = re.compile(r"\w+")
MIN_CLAUSE_WORDS = 6


@dataclass
class Example:
    messages: list[ChatMessage]  # system + user, as serving sends them
    completion: str
    kind: str  # answer | refuse
    answer: str = ""  # the pair's reference answer, to score held-out replies


def _norm(text: str) -> str:
    return " " + " ".join(_WORD.findall(fold(text))) + " "


def holds(text: str, answer: str) -> bool:
    """The text contains the answer, ignoring case, accents and punctuation."""
    return _norm(answer).strip() != "" and _norm(answer) in _norm(text)


def target(passages: Sequence[str], answer: str, max_words: int,
           layout: str = units.SENTENCES, question: str = "") -> str:
    """The shortest clause (or run of clauses) of a passage unit (``layout``) holding the
    answer; a unit that a clause would strip of what it is about (an item's lead-in, a row's
    column names) whole where it fits."""
    for unit in (u for p in passages for u in units.of(p, question, layout)):
        sentence = unit.text
        if not holds(sentence, answer):
            continue
        if unit.whole and len(sentence.split()) <= max_words:
            return sentence if sentence.endswith((".", "!", "?")) else sentence + "."
        clauses = extractive.CLAUSE.split(sentence)
        spans = [" ".join(clauses[i:j]) for i in range(len(clauses))
                 for j in range(i + 1, len(clauses) + 1)]
        fits = [s for s in spans if holds(s, answer)
                and MIN_CLAUSE_WORDS <= len(s.split()) <= max_words]
        text = min(fits, key=lambda s: len(s.split())) if fits else _window(sentence, answer,
                                                                             max_words)
        text = text.strip().rstrip(",;:")
        return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")
    return answer  # a human agent's own words: kept as written


def quoted(items: Sequence[str], answer: str) -> str | None:
    """The first focused item holding the answer, as shown: a reply quotes one item whole."""
    return next((t for t in items if holds(t, answer)), None)


def _window(sentence: str, answer: str, max_words: int) -> str:
    words = sentence.split()
    n = len(answer.split())
    for i in range(len(words) - n + 1):
        if holds(" ".join(words[i:i + n]), answer):
            start = max(0, i - (max_words - n) // 2)
            return " ".join(words[start:start + max_words])
    return " ".join(words[:max_words])


def as_passage(doc: str, text: str) -> Passage:
    """A passage as the prompt shows it, from a curated pair's document and text."""
    return Passage(id="", doc=doc, heading="", position=0, text=text, score=0.0)


def _example(question: str, passages: Sequence[Passage], completion: str,
             kind: str, answer: str) -> Example:
    return Example(prompt.build(prompt.DEFAULT_PERSONA, passages, question), completion, kind,
                   answer)


def build(pairs: Sequence[Pair], embedder: Embedder, *, passages: int, negatives: float,
          calibration: float, max_target_words: int, seed: int, sentences: int = 0,
          focus_terms: float = 0.0, holdout: str = "pairs",
          layout: str = units.SENTENCES) -> tuple[list[Example], list[Example]]:
    """Training examples and held-out calibration examples (one answer, one refusal per pair).

    ``holdout="documents"`` holds out whole documents, whose passages then never appear in a
    training prompt: the held-out questions are about text the model never saw, as an eval
    set's dev documents are. ``sentences`` focuses each prompt as serving then does
    (``extractive.focus``, in units of ``layout``, as targets are cut); a pair whose answer its
    focused sentences lose teaches nothing.
    """
    rng = random.Random(seed)
    embedder = _Remembered(embedder)
    pool = list(dict.fromkeys((d or "documento", t) for p in pairs
                              for d, t in zip(docs_of(p), p.passages, strict=True)))
    vectors = embedder.passages([t for _, t in pool]) if pool else np.zeros((0, 1))
    normed = {p: _norm(p[1]) for p in pool}  # folding is slow; do it once per passage
    # Items are ranked as serving ranks them: by similarity and by the rare terms they hold,
    # rare here meaning among the pairs' passages (serving counts its own collection).
    idf = lexical.idf(Counter(t for _, text in pool for t in set(lexical.tokens(text))),
                      len(pool)) if focus_terms else None
    order = list(range(len(pairs)))
    rng.shuffle(order)
    n_cal = int(len(pairs) * calibration)
    held = set(order[:n_cal]) if holdout == "pairs" else _whole_documents(pairs, order, n_cal)
    taught = [i for i in order if i not in held]
    unseen = {k for i in held for k in _doc_keys(pairs[i], i)} if holdout == "documents" \
        else set()
    unseen_text = {t for i in held for t in pairs[i].passages} if unseen else set()
    refuse = set(rng.sample(taught, min(len(taught),
                                        round(len(taught) * negatives / (1 - negatives)))))
    train: list[Example] = []
    cal: list[Example] = []

    def shows(question: str, ctx: list[tuple[str, str]]) -> list[Passage]:
        return extractive.focus(embedder, question, [as_passage(d, t) for d, t in ctx],
                                sentences, idf, focus_terms, layout)

    for i, pair in enumerate(pairs):
        own = list(zip(docs_of(pair), pair.passages, strict=True))
        if not pair.answer.strip():  # an out-of-scope question: its nearest passages, refused
            no_answer = _example(pair.question, shows(pair.question, own[:passages]), REFUSAL,
                                 "refuse", "")
            (cal if i in held else train).append(no_answer)
            continue
        ranked = [pool[j] for j in np.argsort(-(vectors @ embedder.query(pair.question)))]
        needle = _norm(pair.answer)
        lacking = [p for p in ranked if p not in own and needle not in normed[p]
                   and (i in held or (p[0] not in unseen and p[1] not in unseen_text))]
        other_docs = [p for p in lacking if p[0] not in {d for d, _ in own}]
        answer_ctx = own[:passages] + lacking[:max(0, passages - len(own))]
        rng.shuffle(answer_ctx)
        shown = shows(pair.question, answer_ctx)
        spanned = any(holds(t, pair.answer) for t in pair.passages)
        texts = [p.text for p in shown]
        quote = quoted(texts, pair.answer) if sentences else None
        lost = spanned and not any(holds(t, pair.answer) for t in texts)
        answer = _example(pair.question, shown,
                          quote or target(texts, pair.answer, max_target_words, layout,
                                          pair.question),
                          "answer", pair.answer)
        # Half the refusals keep same-document passages (the hardest), half mirror a question
        # whose document is missing from the knowledge base.
        hard = rng.random() < 0.5 and i not in held
        no_answer = _example(pair.question,
                             shows(pair.question, (lacking if hard else other_docs)[:passages]),
                             REFUSAL, "refuse", pair.answer)
        if i in held:
            cal += [no_answer] if lost else [answer, no_answer]
        else:
            train += [] if lost else [answer]
            if i in refuse:
                train.append(no_answer)
    rng.shuffle(train)
    return train, cal


@dataclass
class _Remembered:
    """An embedder that embeds each text once: the pool's sentences recur across prompts."""

    inner: Embedder
    seen: dict[str, np.ndarray] = field(default_factory=dict)
    asked: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = ""
    dim: int = 0

    def __post_init__(self) -> None:
        self.name, self.dim = self.inner.name, self.inner.dim

    def passages(self, texts: list[str]) -> np.ndarray:
        new = [t for t in dict.fromkeys(texts) if t not in self.seen]
        if new:
            self.seen.update(zip(new, self.inner.passages(new), strict=True))
        return np.stack([self.seen[t] for t in texts]) if texts else self.inner.passages([])

    def query(self, text: str) -> np.ndarray:
        if text not in self.asked:
            self.asked[text] = self.inner.query(text)
        return self.asked[text]


def _whole_documents(pairs: Sequence[Pair], order: list[int], n: int) -> set[int]:
    """At least n pairs: documents in the shuffled order, each with every pair touching it."""
    keys = [_doc_keys(p, i) for i, p in enumerate(pairs)]
    docs: set[str] = set()
    held: set[int] = set()
    for i in order:
        if len(held) >= n:
            break
        docs |= keys[i]
        held = {j for j, k in enumerate(keys) if k & docs}
    return held


def _doc_keys(pair: Pair, index: int) -> set[str]:
    """The documents a pair's passages come from; a pair naming none is a document of its own."""
    return {d for d in docs_of(pair) if d} or {f"#pair-{index}"}


def docs_of(pair: Pair) -> list[str]:
    """The document of each of a pair's passages ("" where the pair does not say)."""
    return pair.docs if len(pair.docs) == len(pair.passages) else [""] * len(pair.passages)
