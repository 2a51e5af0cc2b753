"""The extractive answer: no LLM, the passage unit most similar to the question.

Also the focused prompt of a small local model: passages cut to their units closest to the
question, so a 270M model picks among three items instead of reading two whole passages.

Units come in layouts (``rag.units``): a version is shown the layout it was trained on
(``SENTENCES`` for every version up to faquad-v5), and the extractive answer uses
``STRUCTURED`` (list items with their lead-in, table rows with their header).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from rag import lexical, units, yesno
from rag.embedders import Embedder, ranker
from rag.index import KnowledgeBase, Passage
from rag.units import CLAUSE, SENTENCES, STRUCTURED, sentences

__all__ = ["CLAUSE", "ITEM_WORDS", "MAX_WORDS", "SENTENCES", "STRUCTURED", "NUMBER", "TERMS", "Idf",
           "answer_in", "best_sentence", "closest", "focus", "focus_in", "pieces", "sentences",
           "top_sentences"]

Idf = Callable[[str], float]  # a stemmed term's inverse document frequency in the collection
MAX_WORDS = 60
# A focused item is at most this long, so a reply quoting one item stays a short answer (an
# answer is scored within 40 words); a longer sentence is shown as runs of its clauses.
ITEM_WORDS = 32
# The extractive answer ranks units as the focused prompt does (``focus_terms`` of the versions
# trained since faquad-v4): e5 similarity plus this times the idf-weighted share of the
# question's terms a unit holds. For "qual telefone do suporte? prefiro ligar" e5 alone ranks
# the support list's e-mail item first; the rare term decides. On the corpus's train and dev
# businesses (top 4) the reply held the answer 0.518 -> 0.606 and 0.532 -> 0.597
# (bench/extraction_bench.py).
TERMS = 0.15
# ...plus this where the question asks for a number ("qnto custa", "qts dias", "ate qnd") and the
# unit holds one (``units.asks_for_number``): for "em qto tempo vcs postam o pedido?", "Assim
# que o pedido é postado, você recebe o código de rastreio" ranked above "O pedido é ... postado
# em até 2 dias úteis". Chosen on the train businesses (0.03 to 0.08 alike), checked on dev:
# 0.606 -> 0.635 and 0.597 -> 0.649. The extractive answer only: a version's focused prompt
# keeps the order it was trained on.
NUMBER = 0.04


def pieces(sentence: str, max_words: int = ITEM_WORDS) -> list[str]:
    """The sentence, or when longer than ``max_words`` words, runs of its clauses that fit
    (a single clause too long is cut by words)."""
    return units.pieces(sentence, max_words)


def top_sentences(embedder: Embedder, question: str, passages: Sequence[Passage],
                  n: int, max_words: int = 0, idf: Idf | None = None,
                  terms: float = 0.0, layout: str = SENTENCES,
                  number: float = 0.0) -> list[Passage]:
    """The n units (``layout``) of the passages closest to the question, closest first, each
    as a passage of its own (same id, document and heading); with ``max_words``, units longer
    than that compete as their pieces (``units.shown``); with ``idf``, ``terms`` times the
    idf-weighted share of the question's terms a unit holds is added to its similarity, and
    ``number`` to a unit holding a number where the question asks for one."""
    candidates, scores = _scored(embedder, question, passages, max_words, layout)
    if idf is not None and terms and candidates:
        scores = scores + terms * np.array(
            lexical.held(question, [key for _, _, key in candidates], idf))
    if number and candidates and units.asks_for_number(question):
        scores = scores + number * np.array([units.has_number(x) for _, x, _ in candidates])
    return [replace(candidates[i][0], text=candidates[i][1])
            for i in np.argsort(-scores, kind="stable")[:n]]


def closest(embedder: Embedder, question: str, passages: Sequence[Passage]) -> float:
    """Similarity to the question of the passages' closest sentence, or piece as focus shows it
    (of the closest whole passage where none has a sentence, as in a table of short cells).
    Always ``SENTENCES``: the learned evidence rules (``models/evidence``) were fitted on it."""
    _, scores = _scored(embedder, question, passages, ITEM_WORDS)
    if not len(scores) and passages:
        scores = embedder.passages([p.text for p in passages]) @ embedder.query(question)
    return float(scores.max()) if len(scores) else 0.0


def _scored(embedder: Embedder, question: str, passages: Sequence[Passage],
            max_words: int, layout: str = SENTENCES
            ) -> tuple[list[tuple[Passage, str, str]], np.ndarray]:
    """(passage, unit as shown, what it is ranked on) and its similarity to the question: a
    FAQ answer is ranked with its question (``units.Unit.asked``), shown without it."""
    candidates = [(p, x, f"{u.asked} {x}" if u.asked else x)
                  for p in passages for u in units.of(p.text, question, layout, p.heading)
                  for x in (units.shown(u, max_words) if max_words else [u.text])]
    if not candidates:
        return [], np.zeros(0)
    keys = [key for _, _, key in candidates]
    return candidates, embedder.passages(keys) @ embedder.query(question)


def best_sentence(embedder: Embedder, question: str, passages: Sequence[Passage],
                  layout: str = STRUCTURED, yes_no: bool = True, idf: Idf | None = None,
                  terms: float = TERMS, number: float = NUMBER) -> str | None:
    """The extractive reply: the unit of the passages closest to the question (with ``idf``,
    ranked with the rare question terms it holds, and ``number`` for a number asked for, as
    ``top_sentences``), cut to MAX_WORDS words, never a table's header row (it names columns
    and answers nothing); with ``yes_no``, opened with "Sim, " or "Não, " where it decides a
    yes/no question (``rag.yesno``)."""
    headers = set().union(*(units.headers(p.text) for p in passages))
    ranked = top_sentences(embedder, question, passages, 10_000, idf=idf, terms=terms,
                           layout=layout, number=number)
    best = next((s.text for s in ranked if s.text not in headers), None)
    if best is None:
        return None
    words = best.split()
    best = best if len(words) <= MAX_WORDS else " ".join(words[:MAX_WORDS]) + "…"
    return yesno.answer(question, best) if yes_no else best


def answer_in(kb: KnowledgeBase, collection: str, question: str,
              passages: Sequence[Passage]) -> str | None:
    """``best_sentence`` as serving and the evals give it: ranked with the collection's idf."""
    return best_sentence(kb.embedder, question, passages, idf=kb.idf(collection))


def focus(embedder: Embedder, question: str, passages: Sequence[Passage],
          sentences: int, idf: Idf | None = None, terms: float = 0.0,
          layout: str = SENTENCES) -> list[Passage]:
    """What the prompt shows: the passages, or their ``sentences`` closest units (``layout``),
    long ones as pieces of at most ITEM_WORDS words (0 = whole; whole too where no passage has
    a unit, as in a table of short cells), ranked with their rare terms too
    (``top_sentences``)."""
    top = (top_sentences(embedder, question, passages, sentences, ITEM_WORDS, idf, terms,
                         layout) if sentences else [])
    return top or list(passages)


def focus_in(kb: KnowledgeBase, collection: str, question: str, passages: Sequence[Passage],
             sentences: int, terms: float = 0.0, first: int = 0,
             ranked_with: str = "", layout: str = SENTENCES) -> list[Passage]:
    """``focus`` within a collection on its ``first`` passages (0 = all), as a model was
    trained to read them: its units (``layout``; versions trained before layouts existed read
    ``SENTENCES``) ranked by the embedder it was trained with (``ranked_with``, a name; empty:
    the knowledge base's); the idf is counted only where ``terms`` weigh."""
    embedder = kb.embedder
    if sentences and ranked_with and ranked_with != embedder.name:
        embedder = ranker(ranked_with)
    return focus(embedder, question, passages[:first or None], sentences,
                 kb.idf(collection) if terms else None, terms, layout)
