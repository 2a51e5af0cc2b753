"""Eval-set cases as training pairs, shown the passages serving would show around them.

An answerable case's passages are the chunks of its documents that hold its source passages,
cut as the knowledge base cuts them (``rag.chunking``): a list item keeps its lead-in and a table
row its header, which ``rag.units`` then keeps together in the prompt and in the target. An
out-of-scope case (the corpus's are near-misses: a city, plan or payment method no document
holds) becomes a pair with no answer, shown the chunks of its own set that hold most of its rare
terms: the model learns to refuse the topical passage that does not decide the question, the
failure seen on businesses it never saw. Hostile cases teach nothing here.

A corpus folder (``splits.json`` beside one eval set per business) stands for its businesses;
document names carry the set's name, so two businesses' ``faq.md`` stay two documents.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from eval.evalset import EvalSet, Source, load, relevant
from finetune.curate import Pair
from rag import lexical
from rag.chunking import chunk
from rag.parsing import read_text

NEAREST = 2  # chunks shown with an out-of-scope question, as serving's top-k


def sets_of(path: Path) -> list[Path]:
    """The eval sets a path stands for: a corpus's businesses (sorted), or the set itself."""
    if (path / "splits.json").is_file():
        return sorted(p for p in path.iterdir() if (p / "qa.jsonl").is_file())
    return [path]


def chunks(es: EvalSet) -> list[tuple[str, str]]:
    """(document file name, chunk text) of every document, as the knowledge base cuts them."""
    return [(doc.name, c.text) for doc in es.docs for c in chunk(read_text(doc))]


def pairs(es: EvalSet, split: str) -> tuple[list[Pair], list[str]]:
    """The set's ``split`` cases as pairs (answerable, and out-of-scope with no answer), and the
    questions of its other splits, which curation keeps out of training."""
    cut = chunks(es)
    idf = lexical.idf(Counter(t for _, text in cut for t in set(lexical.tokens(text))),
                      len(cut))
    name = es.root.name
    out: list[Pair] = []
    held_out: list[str] = []
    for case in es.cases:
        if case.split != split:
            held_out.append(case.question)
        elif case.kind == "in_scope" and case.answers:
            shown = _holding(cut, case.sources) or [(s.doc, s.text) for s in case.sources]
            out.append(Pair(case.question, case.answers[0], name, case.id,
                            [t for _, t in shown], [f"{name}/{d}" for d, _ in shown]))
        elif case.kind == "out_of_scope":
            near = _nearest(cut, case.question, idf)
            out.append(Pair(case.question, "", name, case.id, [t for _, t in near],
                            [f"{name}/{d}" for d, _ in near]))
    return out, held_out


def gather(paths: list[Path], split: str) -> tuple[list[Pair], list[str]]:
    """``pairs`` of every set the paths stand for."""
    found: list[Pair] = []
    held_out: list[str] = []
    for path in paths:
        for set_dir in sets_of(path):
            got, held = pairs(load(set_dir), split)
            found += got
            held_out += held
    return found, held_out


def _holding(cut: list[tuple[str, str]], sources: Sequence[Source]) -> list[tuple[str, str]]:
    """The chunks holding each source passage (one per source, in order, no repeats)."""
    shown: list[tuple[str, str]] = []
    for src in sources:
        hit = next((c for c in cut if relevant(c[0], c[1], src)), None)
        if hit is not None and hit not in shown:
            shown.append(hit)
    return shown


def _nearest(cut: list[tuple[str, str]], question: str,
             idf: Callable[[str], float]) -> list[tuple[str, str]]:
    """The chunks holding most of the question's terms, weighted by rarity."""
    shares = lexical.held(question, [text for _, text in cut], idf)
    order = sorted(range(len(cut)), key=shares.__getitem__, reverse=True)
    return [cut[i] for i in order[:NEAREST]]
