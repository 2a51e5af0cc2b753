"""Near-misses: a question about the company's subject whose most specific term (a plan, a city,
a payment method) no document holds is refused before any model is asked; its answerable
neighbours, written as customers write, are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import evidence, lexical
from rag.edge import EdgeClient
from rag.evidence import NEAR_MISS, Floors, Learned
from rag.index import KnowledgeBase

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "evidence" / "negocios.json"
DOCS = {
    "planos.md": "# Planos de internet fibra\n\n"
                 "| Plano | Download | Upload | Preço |\n|---|---|---|---|\n"
                 "| Conecta 100 | 100 Mega | 50 Mega | R$ 79,90 |\n"
                 "| Conecta 300 | 300 Mega | 150 Mega | R$ 99,90 |\n"
                 "| Conecta 600 | 600 Mega | 300 Mega | R$ 119,90 |\n\n"
                 "Todos os planos têm instalação grátis e roteador Wi-Fi incluso.\n",
    "cidades.md": "# Cidades atendidas\n\nA rede de fibra óptica da Conecta atende Belo "
                  "Horizonte, Contagem, Betim e Nova Lima.\n",
    "pagamento.md": "# Pagamento\n\nA fatura mensal pode ser paga por boleto, Pix ou débito "
                    "automático. O vencimento é no dia 5, 10 ou 20, à escolha do cliente.\n",
    "suporte.md": "# Suporte\n\nO suporte técnico atende 24 horas pelo WhatsApp. A visita "
                  "técnica é agendada em até 48 horas.\n",
}
NEAR_MISSES = ["qto custa o plano de 500 mega?", "vcs atendem em poços de caldas?",
               "aceitam cartao elo na fatura?"]
ANSWERABLE = ["qto custa o plano de 300 mega?", "vcs atendem em contagem?",
              "oi, a vizita tecnica demora qnto? vc sabe?",  # "vizita": one typo from "visita"
              "da pra paga a fatura no pix?"]


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory, e5):  # type: ignore[no-untyped-def]
    base = KnowledgeBase(EdgeClient(str(tmp_path_factory.mktemp("near-miss"))), e5)
    for name, text in DOCS.items():
        base.ingest("c", name, text)
    yield base
    base.client.close()


def _near_miss(kb: KnowledgeBase, question: str) -> float:
    return evidence.near_miss(question, kb.search("c", question, top_k=4), kb.idf("c"))


def test_a_term_no_document_holds_is_a_near_miss_and_informal_spelling_is_not(kb) -> None:
    assert {q: _near_miss(kb, q) >= NEAR_MISS for q in NEAR_MISSES} == dict.fromkeys(
        NEAR_MISSES, True)
    assert {q: _near_miss(kb, q) >= NEAR_MISS for q in ANSWERABLE} == dict.fromkeys(
        ANSWERABLE, False)


def test_the_shipped_rule_refuses_near_misses_and_answers_their_neighbours(kb) -> None:
    rule = Learned.load(SHIPPED)

    def answered(question: str) -> bool:
        return evidence.enough(question, kb.search("c", question, top_k=rule.top_k), rule, kb,
                               "c")

    assert [q for q in NEAR_MISSES if answered(q)] == []
    assert [q for q in ANSWERABLE if not answered(q)] == []


def test_the_floors_veto_refuses_what_they_let_through(kb) -> None:
    floors, vetoing = Floors(1.2, 0.25), Floors(1.2, 0.25, NEAR_MISS)

    def answered(question: str, rule: Floors) -> bool:
        return evidence.enough(question, kb.search("c", question, top_k=4), rule, kb, "c")

    # The plan's speed: every other word is in the plans table, so the floors answer it.
    assert answered("qto custa o plano de 500 mega?", floors)
    assert not answered("qto custa o plano de 500 mega?", vetoing)
    assert answered("qto custa o plano de 300 mega?", vetoing)


def test_chat_words_verbs_and_the_customers_own_things_are_never_specific() -> None:
    def specific(question: str) -> list[str]:
        return [t.word for t in lexical.specific_terms(question)]

    # Question words and WhatsApp spellings, a chat word mistyped ("fika"), verb forms, the
    # customer's own ("minha mae", "tem 63 anos"): none names what the documents could lack.
    assert specific("qnto tempo vc acha q fika pronto?") == ["pronto"]
    assert specific("comprei ontem, to esperando, minha mae tem 63 anos") == []
    # A product is a product even one letter from a chat word ("boto"), or in four letters.
    assert specific("aplicam botox?") == ["botox"]
    assert [(t.word, t.unit) for t in lexical.specific_terms("tem plano de 2 giga?")] == [
        ("plano", ""), ("2", "giga"), ("giga", "")]
