"""The extractive answer: no LLM, the passage sentence most similar to the question.

Also the focused prompt of a small local model: passages cut to their sentences closest to the
question, so a 270M model picks among three sentences instead of reading two whole passages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from rag import lexical
from rag.embedders import Embedder, ranker
from rag.index import KnowledgeBase, Passage

_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\n+")
_RULE = set("-|: ")  # what a Markdown table's separator row is made of
CLAUSE = re.compile(r"(?<=[,;:])\s+")
Idf = Callable[[str], float]  # a stemmed term's inverse document frequency in the collection
MAX_WORDS = 60
# A focused item is at most this long, so a reply quoting one item stays a short answer (an
# answer is scored within 40 words); a longer sentence is shown as runs of its clauses.
ITEM_WORDS = 32


def sentences(text: str) -> list[str]:
    """Sentences of a passage; table rows and list items count as sentences."""
    out = []
    for s in map(_clean, _SENTENCE.split(text)):
        if len(s.split()) >= 3 and not set(s) <= _RULE:
            out.append(s)
    return out


def _clean(sentence: str) -> str:
    return sentence.replace("**", "").replace("__", "").strip(" \t|-*#")


def _headers(text: str) -> set[str]:
    """The header rows of a passage's Markdown tables, as ``sentences`` gives them."""
    lines = text.splitlines()
    return {_clean(row) for row, below in zip(lines, lines[1:], strict=False)
            if row.lstrip().startswith("|") and below.strip() and set(below.strip()) <= _RULE}


def pieces(sentence: str, max_words: int = ITEM_WORDS) -> list[str]:
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


def top_sentences(embedder: Embedder, question: str, passages: Sequence[Passage],
                  n: int, max_words: int = 0, idf: Idf | None = None,
                  terms: float = 0.0) -> list[Passage]:
    """The n sentences of the passages closest to the question, closest first, each as a
    passage of its own (same id, document and heading); with ``max_words``, sentences longer
    than that compete as their ``pieces``; with ``idf``, ``terms`` times the idf-weighted share
    of the question's terms a sentence holds is added to its similarity."""
    candidates, scores = _scored(embedder, question, passages, max_words)
    if idf is not None and terms and candidates:
        scores = scores + terms * np.array(
            lexical.held(question, [s for _, s in candidates], idf))
    return [replace(candidates[i][0], text=candidates[i][1])
            for i in np.argsort(-scores, kind="stable")[:n]]


def closest(embedder: Embedder, question: str, passages: Sequence[Passage]) -> float:
    """Similarity to the question of the passages' closest sentence, or piece as focus shows it
    (of the closest whole passage where none has a sentence, as in a table of short cells)."""
    _, scores = _scored(embedder, question, passages, ITEM_WORDS)
    if not len(scores) and passages:
        scores = embedder.passages([p.text for p in passages]) @ embedder.query(question)
    return float(scores.max()) if len(scores) else 0.0


def _scored(embedder: Embedder, question: str, passages: Sequence[Passage],
            max_words: int) -> tuple[list[tuple[Passage, str]], np.ndarray]:
    candidates = [(p, x) for p in passages for s in sentences(p.text)
                  for x in (pieces(s, max_words) if max_words else [s])]
    if not candidates:
        return [], np.zeros(0)
    return candidates, embedder.passages([s for _, s in candidates]) @ embedder.query(question)


def best_sentence(embedder: Embedder, question: str, passages: Sequence[Passage]) -> str | None:
    """The sentence of the passages closest to the question, cut to MAX_WORDS words; never a
    table's header row, which names columns and answers nothing."""
    headers = set().union(*(_headers(p.text) for p in passages))
    ranked = top_sentences(embedder, question, passages, 10_000)
    best = next((s.text for s in ranked if s.text not in headers), None)
    if best is None:
        return None
    words = best.split()
    return best if len(words) <= MAX_WORDS else " ".join(words[:MAX_WORDS]) + "…"


def focus(embedder: Embedder, question: str, passages: Sequence[Passage],
          sentences: int, idf: Idf | None = None, terms: float = 0.0) -> list[Passage]:
    """What the prompt shows: the passages, or their ``sentences`` closest sentences, long ones
    as pieces of at most ITEM_WORDS words (0 = whole; whole too where no passage has a sentence,
    as in a table of short cells), ranked with their rare terms too (``top_sentences``)."""
    top = (top_sentences(embedder, question, passages, sentences, ITEM_WORDS, idf, terms)
           if sentences else [])
    return top or list(passages)


def focus_in(kb: KnowledgeBase, collection: str, question: str, passages: Sequence[Passage],
             sentences: int, terms: float = 0.0, first: int = 0,
             ranked_with: str = "") -> list[Passage]:
    """``focus`` within a collection on its ``first`` passages (0 = all), as a model was
    trained to read them: ranked by the embedder it was trained with (``ranked_with``, a name;
    empty: the knowledge base's); the idf is counted only where ``terms`` weigh."""
    embedder = kb.embedder
    if sentences and ranked_with and ranked_with != embedder.name:
        embedder = ranker(ranked_with)
    return focus(embedder, question, passages[:first or None], sentences,
                 kb.idf(collection) if terms else None, terms)
