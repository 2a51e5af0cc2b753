"""Menu answers by meaning: the ``flows.Matcher`` the server hands to ``flows.step``.

The customer's text is embedded as a search query and each option's text as a passage, the way
the knowledge base embeds questions and documents (the e5 embedder puts e5's ``query: `` and
``passage: `` prefixes itself), and the option of highest cosine similarity is named with that
similarity, clipped to 0..1, as its score. The step decides whether the score is enough (the
menu node's ``min_score``). Options are few and the same on every visit of a menu: their vectors
are kept, the last ``OPTIONS_KEPT`` texts, so a warm menu costs one query embedding.

Nothing heavy happens at import: the embedder is the one the runtime already loaded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

import flows
from rag.embedders import Embedder

if TYPE_CHECKING:
    from server.runtime import Runtime

OPTIONS_KEPT = 1024


def menu_matcher(embedder: Embedder, kept: int = OPTIONS_KEPT) -> flows.Matcher:
    """A matcher on ``embedder``: (text, option texts) -> (closest option's index, its cosine
    similarity clipped to 0..1), or None for an empty text or no options."""
    vectors: OrderedDict[str, np.ndarray] = OrderedDict()
    lock = threading.Lock()

    def options_matrix(options: list[str]) -> np.ndarray:
        with lock:
            known = {t: v for t in options if (v := vectors.get(t)) is not None}
            for t in known:
                vectors.move_to_end(t)
        missing = list(dict.fromkeys(t for t in options if t not in known))
        if missing:  # embedded outside the lock: a warm menu elsewhere need not wait
            fresh = dict(zip(missing, embedder.passages(missing), strict=True))
            with lock:
                for t, v in fresh.items():
                    vectors[t] = v
                    vectors.move_to_end(t)
                while len(vectors) > kept:
                    vectors.popitem(last=False)
            known |= fresh
        return np.stack([known[t] for t in options])

    def match(text: str, options: Sequence[str]) -> tuple[int, float] | None:
        said = text.strip()
        if not said or not options:
            return None
        scores = options_matrix(list(options)) @ embedder.query(said)
        best = int(np.argmax(scores))
        return best, float(np.clip(scores[best], 0.0, 1.0))

    return match


_last: tuple[Embedder, flows.Matcher] | None = None


def for_runtime(rt: Runtime) -> flows.Matcher:
    """The matcher on the runtime's embedder (its knowledge base's), made once per embedder so
    the options' vectors stay kept from one message to the next."""
    global _last
    embedder = rt.kb.embedder
    last = _last
    if last is not None and last[0] is embedder:
        return last[1]
    made = menu_matcher(embedder)
    _last = (embedder, made)
    return made
