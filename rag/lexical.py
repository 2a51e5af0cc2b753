"""Portuguese text to sparse term vectors for the lexical half of hybrid retrieval.

Tokens are lower-cased, stemmed (Snowball, Portuguese) and accent-folded, stop words dropped,
and hashed to sparse indices. Passages carry BM25 term-frequency weights; Qdrant's ``IDF``
modifier on the sparse vector supplies the inverse document frequency, so no second index.
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache

import snowballstemmer

K1 = 1.2
B = 0.75
AVG_TOKENS = 80.0  # typical passage length after stop words; fixed so weights never go stale

_WORD = re.compile(r"\w+", re.UNICODE)
_STEMMER = snowballstemmer.stemmer("portuguese")

# Informal WhatsApp spellings, expanded on the query side only (documents are written formally).
ABBREVIATIONS = {
    "vc": "você", "vcs": "vocês", "qto": "quanto", "qtos": "quantos", "qnt": "quanto",
    "qnts": "quantos", "qdo": "quando", "qd": "quando", "pq": "porque", "tb": "também",
    "tbm": "também", "hj": "hoje", "msm": "mesmo", "td": "tudo", "p": "para", "pra": "para",
    "pro": "para", "q": "que", "n": "não", "nao": "não", "obg": "obrigado", "sp": "são paulo",
    "rj": "rio de janeiro", "cep": "cep", "vlw": "valeu", "dps": "depois", "agr": "agora",
}

STOP_WORDS = frozenset(
    """a à ao aos as às até com como da das de dela dele deles do dos e é ela elas ele eles em
    entre era essa esse esta está estão este eu foi for há isso isto já la lhe lhes mais mas me
    mesmo meu minha muito na nas nem no nos nós nossa nosso num numa o os ou para pela pelas
    pelo pelos por qual quando que quem se sem ser seu seus só sua suas também te tem têm ter
    teu tua um uma umas uns você vocês vos sou são foram será seria tá ta to tô então aí lá aqui
    oi olá bom boa dia tarde noite gostaria queria saber por favor obrigado obrigada tudo
    bem beleza blz ok valeu""".split()
)


def fold(text: str) -> str:
    """Lower-case and strip accents (ç -> c, ã -> a), keeping everything else."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_FOLDED_STOPS = frozenset(fold(w) for w in STOP_WORDS)


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    """Stem of the accent-folded word, so "devolução" and "devolucao" meet.

    Folding first loses Snowball's -ões plural rule; it is put back by hand (ões -> ão).
    """
    folded = fold(word)
    if folded.endswith(("oes", "aes")) and len(folded) > 4:
        folded = folded[:-3] + "ao"
    return _STEMMER.stemWord(folded)


def tokens(text: str, *, query: bool = False) -> list[str]:
    """Stemmed, accent-folded terms of a text, stop words dropped."""
    out: list[str] = []
    for raw in _WORD.findall(text.lower()):
        words = ABBREVIATIONS.get(fold(raw), raw).split() if query else [raw]
        for word in words:
            if fold(word) in _FOLDED_STOPS or (len(word) == 1 and not word.isdigit()):
                continue
            out.append(_stem(word))
    return out


def idf(counts: Counter[str], total: int) -> Callable[[str], float]:
    """Inverse document frequency of a term among ``total`` passages, ``counts`` holding each
    term's passage count (BM25's form, as Qdrant's IDF modifier computes it)."""
    return lambda term: math.log(1 + (total - counts[term] + 0.5) / (counts[term] + 0.5))


def held(question: str, texts: Sequence[str],
         weight: Callable[[str], float] | None = None) -> list[float]:
    """Share of the question's distinct terms each text holds, each term counted once or, with
    ``weight`` (a term's idf), by its weight; 0 where the question names no term."""
    terms = set(tokens(question, query=True))
    weigh = weight or (lambda _t: 1.0)
    total = sum(map(weigh, terms))
    if not total:
        return [0.0] * len(texts)
    return [sum(map(weigh, terms & set(tokens(t)))) / total for t in texts]


def term_id(term: str) -> int:
    """Stable sparse index of a term."""
    return zlib.crc32(term.encode())


def passage_vector(text: str) -> tuple[list[int], list[float]]:
    """Sparse BM25 term-frequency weights of a passage."""
    counts = Counter(tokens(text))
    length = sum(counts.values()) or 1
    norm = K1 * (1 - B + B * length / AVG_TOKENS)
    return _sparse({t: tf * (K1 + 1) / (tf + norm) for t, tf in counts.items()})


def query_vector(text: str) -> tuple[list[int], list[float]]:
    """Sparse vector of a query: each distinct term once."""
    return _sparse({t: 1.0 for t in tokens(text, query=True)})


def _sparse(weights: dict[str, float]) -> tuple[list[int], list[float]]:
    merged: dict[int, float] = {}
    for term, w in weights.items():
        idx = term_id(term)
        merged[idx] = merged.get(idx, 0.0) + w
    return list(merged), list(merged.values())
