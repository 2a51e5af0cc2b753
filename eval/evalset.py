"""Eval sets in the layout of shared/EVALSET.md: ``docs/`` and ``qa.jsonl``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path

from rag.parsing import read_text

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Source:
    doc: str  # file name, as the knowledge base names it
    text: str


@dataclass(frozen=True)
class Case:
    id: str
    question: str
    answers: list[str]
    sources: list[Source]
    kind: str  # in_scope | out_of_scope | injection
    split: str | None = None


@dataclass
class EvalSet:
    root: Path
    docs: list[Path]
    cases: list[Case] = field(default_factory=list)
    _texts: dict[str, str] = field(default_factory=dict, repr=False)

    def answering_docs(self, case: Case) -> list[str]:
        """Every document that answers a case: its source documents, and any other that holds
        a source passage or a reference answer of two or more words.

        Leaving all of them out is what makes the case unanswerable. Leaving out only its own
        document is not enough where documents repeat each other: FaQuAD repeats regulation
        text, and half of its dev questions are answered, word for word, by a second document.
        """
        if not self._texts:
            self._texts = {p.name: _flat(read_text(p)) for p in self.docs}
        needles = [_flat(s.text) for s in case.sources] + \
            [_flat(a) for a in case.answers if len(words(a)) >= 2]
        own = {s.doc for s in case.sources}
        return sorted(own | {name for name, text in self._texts.items()
                             if any(n.strip() and n in text for n in needles)})


def load(root: Path) -> EvalSet:
    """Read a set; a malformed line is an error naming its line number."""
    docs_dir, qa = root / "docs", root / "qa.jsonl"
    if not docs_dir.is_dir() or not qa.is_file():
        raise ValueError(f"{root}: an eval set needs docs/ and qa.jsonl (see EVALSET.md)")
    cases = []
    for n, line in enumerate(qa.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            cases.append(_case(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{qa}:{n}: malformed case ({exc})") from None
    return EvalSet(root, sorted(p for p in docs_dir.rglob("*") if p.is_file()), cases)


KINDS = ("in_scope", "out_of_scope", "injection")


def _case(raw: dict) -> Case:
    """One qa.jsonl line as EVALSET.md lays it out; a field of the wrong type is an error."""
    if not isinstance(raw, dict):
        raise ValueError("a case is a JSON object")
    answers, sources = raw.get("answers", []), raw.get("sources", [])
    if not isinstance(raw["question"], str) or not raw["question"].strip():
        raise ValueError("'question' must be a non-empty string")
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise ValueError("'answers' must be a list of strings")
    if not isinstance(sources, list) or not all(
            isinstance(s, dict) and isinstance(s.get("doc"), str) and isinstance(s.get("text"), str)
            for s in sources):
        raise ValueError("'sources' must be a list of {doc, text} strings")
    if raw.get("kind", "in_scope") not in KINDS:
        raise ValueError(f"'kind' must be one of {', '.join(KINDS)}")
    return Case(id=str(raw["id"]), question=raw["question"], answers=answers,
                sources=[Source(Path(s["doc"]).name, s["text"]) for s in sources],
                kind=raw.get("kind", "in_scope"), split=raw.get("split"))


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _flat(text: str) -> str:
    """Lower-case words between single spaces, accents kept: for containment tests."""
    return f" {' '.join(words(text))} "


def relevant(chunk_doc: str, chunk_text: str, source: Source) -> bool:
    """EVALSET.md: the chunk contains the passage, or overlaps at least half of its words.

    Overlap is one contiguous run of the passage's words (a passage cut by a chunk boundary);
    scattered common words ("de", "a", "que") never make a chunk relevant.
    """
    if chunk_doc != source.doc:
        return False
    if " ".join(source.text.split()) in " ".join(chunk_text.split()):
        return True
    passage, chunk = words(source.text), words(chunk_text)
    if not passage:
        return False
    match = SequenceMatcher(None, passage, chunk, autojunk=False).find_longest_match(
        0, len(passage), 0, len(chunk))
    return match.size >= len(passage) / 2
