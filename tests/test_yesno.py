"""Yes/no questions get "Sim, …" or "Não, …" when the reply's text decides them, and no prefix
otherwise: an open question, a text missing the question's key term, or a negation that does
not settle it."""

from __future__ import annotations

import pytest

from rag.yesno import answer

ELO = "Aceitamos cartões Visa, Mastercard e Elo em até 10x."
PARCELAS = "As compras podem ser parceladas em até 10x sem juros."


@pytest.mark.parametrize("question, text, reply", [
    # yes/no questions the text decides
    ("vcs aceitam elo?", ELO, "Sim, aceitamos cartões Visa, Mastercard e Elo em até 10x."),
    ("oi, vcs aceitam elo?", ELO, "Sim, aceitamos cartões Visa, Mastercard e Elo em até 10x."),
    ("aceita cheque?", "Não aceitamos cheques.", "Não, não aceitamos cheques."),
    ("da pra parcelar", PARCELAS, "Sim, as compras podem ser parceladas em até 10x sem juros."),
    ("parcela sem juros?", PARCELAS,
     "Sim, as compras podem ser parceladas em até 10x sem juros."),
    ("abre domingo?", "A loja abre aos domingos, das 10h às 14h.",
     "Sim, a loja abre aos domingos, das 10h às 14h."),
    ("tem estacionamento", "A loja tem estacionamento gratuito para clientes.",
     "Sim, a loja tem estacionamento gratuito para clientes."),
    ("entrega em sorocaba?", "Entregamos em Sorocaba, Campinas e Jundiaí.",
     "Sim, entregamos em Sorocaba, Campinas e Jundiaí."),
    ("da pra trocar brinco? n gostei",
     "Brincos não podem ser trocados por questões de higiene.",
     "Não, brincos não podem ser trocados por questões de higiene."),
    ("tem atendimento domingo?", "Dia: Domingos e feriados; Horário: Sem atendimento",
     "Não. Dia: Domingos e feriados; Horário: Sem atendimento"),
    ("a costura abriu, tem garantia?", "Peças com defeito têm garantia de 90 dias.",
     "Sim, peças com defeito têm garantia de 90 dias."),
    ("vcs tem loja em campinas?", "Loja Aurora Campinas: Rua Barão de Jaguara, 1250.",
     "Sim. Loja Aurora Campinas: Rua Barão de Jaguara, 1250."),  # a name keeps its capital
    # the text does not decide: no prefix
    ("entrega em sorocaba?", "Entregamos em todo o Brasil.", "Entregamos em todo o Brasil."),
    ("abre domingo?", "Aos domingos e feriados a loja fica fechada.",
     "Aos domingos e feriados a loja fica fechada."),
    ("da pra parcelar", "Não oferecemos parcelamento com juros.",
     "Não oferecemos parcelamento com juros."),
    ("o frete é gratis?", "O frete grátis não vale para a entrega expressa.",
     "O frete grátis não vale para a entrega expressa."),
    ("aceita pix ou cartão?", "Aceitamos Pix e cartão.", "Aceitamos Pix e cartão."),
    # not yes/no questions: no prefix
    ("qual o horario", "A loja abre às 10h.", "A loja abre às 10h."),
    ("quanto custa a entrega expressa?", "A entrega expressa custa R$ 19,90.",
     "A entrega expressa custa R$ 19,90."),
    ("qndo o boleto vence?", "O boleto vence em 3 dias úteis.",
     "O boleto vence em 3 dias úteis."),
    ("onde fica a loja?", "A loja fica na Rua Barão de Jaguara, 1250.",
     "A loja fica na Rua Barão de Jaguara, 1250."),
    ("quero trocar um produto", "Você pode trocar um produto em até 30 dias.",
     "Você pode trocar um produto em até 30 dias."),
    # a reply that answers already keeps its own opening
    ("vcs aceitam elo?", "Sim, aceitamos Elo.", "Sim, aceitamos Elo."),
    # a reply that is a question decides nothing
    ("posso usar meu roteador?", "Posso usar meu próprio roteador?",
     "Posso usar meu próprio roteador?"),
])
def test_yes_no_prefix(question: str, text: str, reply: str) -> None:
    assert answer(question, text) == reply
