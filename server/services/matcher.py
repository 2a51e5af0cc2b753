"""Menu answers by meaning: the ``flows.Matcher`` the server hands to ``flows.step``.

The customer's text is embedded as a search query and each option's text as a passage, the way
the knowledge base embeds questions and documents (the e5 embedder puts e5's ``query: `` and
``passage: `` prefixes itself). The option the text stands out for, against everyday messages,
is named with a calibrated score (``menu_matcher`` says how); the step decides whether the
score is enough (the menu node's ``min_score``). Options are few and the same on every visit
of a menu: their vectors are kept, the last ``OPTIONS_KEPT`` texts, so a warm menu costs one
query embedding.

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
# Everyday messages that choose no option: how close an option's text sits to talk in general.
EVERYDAY = ("oi", "bom dia", "boa tarde", "obrigado", "ok", "tudo bem?", "sim", "não",
            "não entendi", "pode me ajudar?", "quero saber uma coisa", "qual o horário de vocês?",
            "quanto custa?", "meu pedido", "tchau", "blz", "valeu", "alô", "oi tudo bem", "hmm")
SPREAD = 4.5  # (2 z_best - z_second) at which the score reaches 1; 0.6 is then z about 1.8


def menu_matcher(embedder: Embedder, kept: int = OPTIONS_KEPT) -> flows.Matcher:
    """A matcher on ``embedder``: (text, option texts) -> (the option the text stands out for,
    a score in 0..1), or None for an empty text or no options.

    Raw cosine similarity does not separate: small embedders put every pt-BR text at 0.8-0.9
    from every option, so "banana" would pick one at 0.82. Each option's similarity is instead
    compared with its similarities to ``EVERYDAY`` messages (a z-score: how unusually close the
    text is to this option), and the score weighs the best option's z against the runner-up's,
    so a text close to all options alike ("obrigado") scores low."""
    kept_options: OrderedDict[str, tuple[np.ndarray, float, float]] = OrderedDict()
    lock = threading.Lock()
    everyday: list[np.ndarray] = []

    def calibrated(options: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with lock:
            known = {t: v for t in options if (v := kept_options.get(t)) is not None}
            for t in known:
                kept_options.move_to_end(t)
        missing = list(dict.fromkeys(t for t in options if t not in known))
        if missing:  # embedded outside the lock: a warm menu elsewhere need not wait
            if not everyday:
                everyday.append(np.stack([embedder.query(t) for t in EVERYDAY]))
            fresh = {}
            for t, v in zip(missing, embedder.passages(missing), strict=True):
                sims = everyday[0] @ v
                fresh[t] = (v, float(sims.mean()), max(float(sims.std()), 1e-3))
            with lock:
                for t, entry in fresh.items():
                    kept_options[t] = entry
                    kept_options.move_to_end(t)
                while len(kept_options) > kept:
                    kept_options.popitem(last=False)
            known |= fresh
        rows = [known[t] for t in options]
        return (np.stack([r[0] for r in rows]), np.array([r[1] for r in rows]),
                np.array([r[2] for r in rows]))

    def match(text: str, options: Sequence[str]) -> tuple[int, float] | None:
        said = text.strip()
        if not said or not options:
            return None
        vectors, mean, spread = calibrated(list(options))
        z = (vectors @ embedder.query(said) - mean) / spread
        order = np.argsort(z)[::-1]
        best = int(order[0])
        second = float(z[order[1]]) if len(order) > 1 else 0.0
        return best, float(np.clip((2 * z[best] - second) / SPREAD, 0.0, 1.0))

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
