"""Curated chat pairs as an eval set, for a company that has written none.

``atende finetune curate`` pairs each customer turn with the human agent's reply and the
passages the knowledge base found for it, with their documents. Those passages, put back
together per document, are the set's ``docs/``; each pair is an in-scope case whose reference is
the agent's reply. An agent's whole reply is rarely held word for word by a short answer, so the
gate judges pairs on token F1 (``TARGET``), not containment. A question then asked without its
pair's documents is unanswerable, as in any set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from eval.evalset import EvalSet, load

TARGET = "f1"
_UNSAFE = re.compile(r"[^\w.-]+")


class Pair(Protocol):
    """What a curated pair holds (``finetune.curate.Pair``; eval does not import finetune)."""

    question: str
    answer: str
    passages: list[str]
    docs: list[str]


def _file(doc: str) -> str:
    """The document's file in ``docs/``: its text as Markdown, whatever it was uploaded as."""
    name = _UNSAFE.sub("_", Path(doc).name) or "doc"
    return name if name.endswith((".md", ".txt")) else f"{name}.md"


def write(pairs: Iterable[Pair], folder: Path) -> EvalSet:
    """Write the pairs as an eval set in ``folder`` (EVALSET.md's layout) and load it."""
    texts: dict[str, list[str]] = {}
    lines = []
    for i, p in enumerate(pairs):
        sources = []
        for doc, text in zip(p.docs, p.passages, strict=False):
            kept = texts.setdefault(_file(doc), [])
            if text not in kept:
                kept.append(text)
            sources.append({"doc": _file(doc), "text": text})
        lines.append(json.dumps({"id": f"pair-{i + 1:04d}", "question": p.question,
                                 "answers": [p.answer], "sources": sources,
                                 "kind": "in_scope"}, ensure_ascii=False))
    if not lines:
        raise ValueError("no curated pairs to judge on")
    (folder / "docs").mkdir(parents=True, exist_ok=True)
    for name, passages in texts.items():
        (folder / "docs" / name).write_text("\n\n".join(passages) + "\n", encoding="utf-8")
    (folder / "qa.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load(folder)
