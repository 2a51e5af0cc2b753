"""Answer units: a list item says what it is (its lead-in), a table row names its columns, a
list question gets the whole list, in the extractive reply, the focused prompt and training
targets alike; Markdown, HTML and DOCX give the same units; versions trained on sentences are
still shown sentences."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from finetune.curate import Pair
from finetune.examples import build
from rag import extractive, units
from rag.chunking import chunk
from rag.edge import EdgeClient
from rag.index import KnowledgeBase
from rag.parsing import parse

SHOP = """# Loja Vento Sul

## Lojas

Temos três lojas físicas:
- Campinas: Rua Barão de Jaguara, 100
- Sorocaba: Avenida São Paulo, 20
- Jundiaí: Rua do Rosário, 5

## Planos de internet

| Plano | Velocidade | Preço |
|---|---|---|
| Turbo | 300 mega | R$ 99,90 |
| Giga | 1 giga | R$ 149,90 |

## Pagamento

Aceitamos cartões Visa, Mastercard e Elo em até 10x. Não aceitamos cheques.

As formas de pagamento são:

- Pix, com 5% de desconto
- cartão de crédito
- boleto bancário
"""
STORE = "Temos três lojas físicas: Campinas: Rua Barão de Jaguara, 100."
TURBO = "Plano: Turbo; Velocidade: 300 mega; Preço: R$ 99,90"
PAYMENTS = ("As formas de pagamento são: Pix, com 5% de desconto; cartão de crédito; "
            "boleto bancário.")

HTML = """<html><body><h1>Loja Vento Sul</h1><h2>Lojas</h2><p>Temos três lojas físicas:</p>
<ul><li>Campinas: Rua Barão de Jaguara, 100</li><li>Sorocaba: Avenida São Paulo, 20</li>
<li>Jundiaí: Rua do Rosário, 5</li></ul><h2>Planos de internet</h2><table>
<tr><th>Plano</th><th>Velocidade</th><th>Preço</th></tr>
<tr><td>Turbo</td><td>300 mega</td><td>R$ 99,90</td></tr>
<tr><td>Giga</td><td>1 giga</td><td>R$ 149,90</td></tr></table>
<h2>Pagamento</h2><p>Aceitamos cartões Visa, Mastercard e Elo em até 10x. Não aceitamos
cheques.</p><p>As formas de pagamento são:</p><ol><li>Pix, com 5% de desconto</li>
<li>cartão de crédito</li><li>boleto bancário</li></ol></body></html>"""


def _docx() -> bytes:
    import docx

    d = docx.Document()
    d.add_heading("Loja Vento Sul", level=1)
    d.add_heading("Lojas", level=2)
    d.add_paragraph("Temos três lojas físicas:")
    for item in ("Campinas: Rua Barão de Jaguara, 100", "Sorocaba: Avenida São Paulo, 20",
                 "Jundiaí: Rua do Rosário, 5"):
        d.add_paragraph(item, style="List Bullet")
    d.add_heading("Planos de internet", level=2)
    rows = [["Plano", "Velocidade", "Preço"], ["Turbo", "300 mega", "R$ 99,90"],
            ["Giga", "1 giga", "R$ 149,90"]]
    t = d.add_table(rows=3, cols=3)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            t.cell(r, c).text = value
    d.add_heading("Pagamento", level=2)
    d.add_paragraph("Aceitamos cartões Visa, Mastercard e Elo em até 10x. Não aceitamos cheques.")
    d.add_paragraph("As formas de pagamento são:")
    for item in ("Pix, com 5% de desconto", "cartão de crédito", "boleto bancário"):
        d.add_paragraph(item, style="List Number")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def _units(text: str, question: str = "") -> list[str]:
    return [u.text for c in chunk(text)
            for u in units.of(c.text, question, units.STRUCTURED, c.heading_path)]


@pytest.fixture(scope="module")
def shop(tmp_path_factory, e5):  # type: ignore[no-untyped-def]
    kb = KnowledgeBase(EdgeClient(str(tmp_path_factory.mktemp("shop"))), e5)
    kb.ingest("shop", "loja.md", SHOP)
    yield kb
    kb.client.close()


def test_a_list_item_carries_its_lead_in_and_a_row_its_column_names() -> None:
    found = _units(SHOP)
    assert STORE in found and TURBO in found
    assert "Temos três lojas físicas:" not in found  # the lead-in alone answers nothing
    assert not any(u.startswith("Plano: Plano") or u == "Plano | Velocidade | Preço"
                   for u in found)  # the header row is no unit
    assert "As formas de pagamento são: cartão de crédito." in found


def test_a_question_asking_for_the_list_gets_the_lead_in_with_its_items() -> None:
    assert PAYMENTS in _units(SHOP, "quais as formas de pagamento?")
    assert "Temos três lojas físicas: Campinas: Rua Barão de Jaguara, 100; Sorocaba: Avenida " \
        "São Paulo, 20; Jundiaí: Rua do Rosário, 5." in _units(SHOP, "quais lojas vcs tem")
    assert PAYMENTS not in _units(SHOP, "tem desconto no pix?")  # one item answers that


def test_a_whole_list_is_capped_at_a_short_reply() -> None:
    long = "Atendemos nestes bairros:\n" + "\n".join(f"- Bairro número {i} da cidade"
                                                   for i in range(30))
    [whole] = units.of(long, "quais bairros vcs atendem?", units.STRUCTURED)
    assert whole.text.startswith("Atendemos nestes bairros: Bairro número 0 da cidade; ")
    assert len(whole.text.split()) <= units.LIST_WORDS and whole.text.endswith("…")


def test_html_and_docx_lists_and_tables_give_the_units_markdown_gives() -> None:
    markdown = _units(SHOP)
    assert _units(parse(HTML.encode(), "loja.html")) == markdown
    assert _units(parse(_docx(), "loja.docx")) == markdown
    asked = "quais as formas de pagamento?"
    assert PAYMENTS in _units(parse(HTML.encode(), "loja.html"), asked)


def test_a_list_opening_a_section_takes_its_heading_as_lead_in() -> None:
    text = "# Entregas\n\n## Transportadoras\n\n- Correios: para todo o Brasil\n- Loggi: São Paulo"
    assert "Transportadoras: Correios: para todo o Brasil." in _units(text)


def test_the_extractive_reply_names_the_item_with_its_lead_in_and_the_row_with_its_columns(
        shop, e5) -> None:  # type: ignore[no-untyped-def]
    def reply(question: str) -> str | None:
        return extractive.best_sentence(e5, question, shop.search("shop", question, top_k=2))

    assert reply("onde fica a loja de campinas") == STORE
    assert reply("quanto custa o plano turbo?") == TURBO
    assert reply("quais as formas de pagamento?") == PAYMENTS
    said = reply("vcs aceitam elo?")
    assert said and said.startswith("Sim, aceitamos cartões Visa, Mastercard e Elo")
    assert reply("aceita cheque?") == "Não, não aceitamos cheques."


def test_a_version_trained_on_sentences_is_still_shown_sentences(shop, e5) -> None:  # type: ignore[no-untyped-def]
    question = "onde fica a loja de campinas"
    found = shop.search("shop", question, top_k=2)
    as_trained = [p.text for p in extractive.focus(e5, question, found, 3)]  # faquad-v5
    structured = [p.text for p in extractive.focus(e5, question, found, 3,
                                                   layout=units.STRUCTURED)]
    assert "Campinas: Rua Barão de Jaguara, 100" in as_trained and STORE not in as_trained
    assert structured[0] == STORE


def test_training_targets_are_cut_into_the_units_serving_shows(e5) -> None:  # type: ignore[no-untyped-def]
    passages = [c.text for c in chunk(SHOP)]
    pairs = [Pair("onde fica a loja de campinas", "Rua Barão de Jaguara, 100", "shop", "c0",
                  passages[:1], ["loja.md"]),
             Pair("qto custa o turbo", "R$ 99,90", "shop", "c1", passages[1:2], ["loja.md"])]
    # whole passages: the unit holding the answer, as a sentence; focused: the item, as shown
    for sentences, targets in ((0, {STORE, TURBO + "."}), (3, {STORE, TURBO})):
        train, _ = build(pairs, e5, passages=1, negatives=0.0, calibration=0.0,
                         max_target_words=30, seed=1, sentences=sentences,
                         layout=units.STRUCTURED)
        assert {e.completion for e in train} == targets
    old, _ = build(pairs, e5, passages=1, negatives=0.0, calibration=0.0, max_target_words=30,
                   seed=1)  # as faquad-v5 was trained: no lead-in, bare cells
    assert STORE not in {e.completion for e in old}


FAQ = """# Perguntas frequentes

**A clínica aplica vacinas?**
Não. A Clínica Vida Plena não aplica vacinas. Para vacinação, procure um posto de saúde.

**Quanto tempo demora a instalação?**
Até 5 dias úteis na área urbana, depois da aprovação do cadastro.

**Quais são as formas de pagamento?**
- Pix
- cartão de crédito em até 3x

Dúvidas? Fale com a recepção pelo telefone (31) 3333-0000.
"""


def test_a_faq_question_is_no_unit_its_answer_carries_it() -> None:
    found = units.of(FAQ, "", units.STRUCTURED)
    texts = [u.text for u in found]
    assert not any(t.endswith("?") for t in texts)  # quoted, it asks the customer back
    # the short "Não." stays with what it decides
    assert "Não. A Clínica Vida Plena não aplica vacinas." in texts
    by_text = {u.text: u.asked for u in found}
    assert by_text["Até 5 dias úteis na área urbana, depois da aprovação do cadastro."] == \
        "Quanto tempo demora a instalação?"
    assert by_text["cartão de crédito em até 3x."] == "Quais são as formas de pagamento?"
    # a question among a line's sentences: no unit, carried by the sentences after it
    assert by_text["Fale com a recepção pelo telefone (31) 3333-0000."] == "Dúvidas?"
    assert not units.of("FARMACIA POPULAR NA BEM-ESTAR\n\nO programa dá remédios de graça.",
                        "", units.STRUCTURED)[0].text.isupper()  # a PDF's title line


def test_the_extractive_reply_quotes_the_faq_answer_not_its_question(tmp_path, e5) -> None:  # type: ignore[no-untyped-def]
    kb = KnowledgeBase(EdgeClient(str(tmp_path)), e5)
    kb.ingest("faq", "faq.md", FAQ)

    def reply(question: str) -> str | None:
        return extractive.best_sentence(e5, question, kb.search("faq", question, top_k=4))

    assert reply("qnto tempo demora pra instalar dps q eu contratar") == \
        "Até 5 dias úteis na área urbana, depois da aprovação do cadastro."
    said = reply("vcs aplicam vacina da gripe?")
    assert said is not None and said.startswith("Não. A Clínica Vida Plena não aplica vacinas")
    kb.client.close()


SUPPORT = """# Suporte

O suporte atende pelos seguintes canais:
- E-mail suporte@loja.example, com resposta em até 1 dia útil.
- Telefone (48) 4002-0000, de segunda a sexta, das 8h às 18h.
- Chat no site, das 8h às 22h.
"""


def test_the_extractive_reply_is_the_unit_holding_the_rare_term_asked(tmp_path, e5) -> None:  # type: ignore[no-untyped-def]
    # e5 alone ranks the list's first item closest (it is most like "canais do suporte"); the
    # customer asked for the telephone, a term only one item holds
    kb = KnowledgeBase(EdgeClient(str(tmp_path)), e5)
    kb.ingest("shop", "suporte.md", SUPPORT)
    question = "qual telefone do suporte? prefiro ligar"
    found = kb.search("shop", question, top_k=4)
    assert "E-mail" in (extractive.best_sentence(e5, question, found, terms=0.0) or "")
    said = extractive.answer_in(kb, "shop", question, found)
    assert said is not None and "(48) 4002-0000" in said
    kb.client.close()


def test_a_question_asking_for_a_number_is_told_from_others() -> None:
    for asked in ("qnto custa o plano?", "qts dias pra chegar", "ate qnd posso trocar",
                  "qual o whats de vcs", "itbi é quantos por cento", "qual horario do spinning"):
        assert units.asks_for_number(asked), asked
    for other in ("vcs aceitam pix?", "tem estacionamento?", "quais as formas de pagamento",
                  "posso ir pro chile usando a cnh?"):
        assert not units.asks_for_number(other), other


def test_a_question_asking_for_a_number_is_answered_by_the_unit_holding_one(tmp_path, e5) -> None:  # type: ignore[no-untyped-def]
    docs = Path(__file__).parent.parent / "corpus/atende-negocios/moda-bela-vista/docs"
    kb = KnowledgeBase(EdgeClient(str(tmp_path)), e5)
    for name in ("frete-e-entrega.md", "pagamento-e-cupons.md"):
        kb.ingest("moda", name, (docs / name).read_text(encoding="utf-8"))
    idf = kb.idf("moda")
    for question, want in (("em qto tempo vcs postam o pedido?", "até 2 dias úteis"),
                           ("qual o valor minimo pro cupom de primeira compra funcionar",
                            "R$ 150,00")):
        found = kb.search("moda", question, top_k=4)
        # by similarity and terms alone, a unit about the same thing that holds no number
        assert want not in (extractive.best_sentence(e5, question, found, idf=idf, number=0.0)
                            or "")
        assert want in (extractive.answer_in(kb, "moda", question, found) or "")
    kb.client.close()
