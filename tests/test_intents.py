"""A customer who asks for a person gets one, before any document is read."""

from __future__ import annotations

import pytest

from server.services.intents import asks_for_human


@pytest.mark.parametrize("text", [
    "atendente", "Atendente!", "oi, atendente por favor", "HUMANO", "Atendimento humano, por favor",
    "quero falar com um atendente", "me passa pra um humano por favor", "chama um atendente",
    "como falo com um atendente?", "me transfere pro atendente", "preciso de um atendente urgente",
    "tem alguem ai? preciso falar com uma pessoa", "posso conversar com alguém?",
    "quero falar com uma pessoa de verdade", "I want to talk to a human", "agent",
    "como falo com uma pessoa de vdd e nao com robo",
    # a burst: the messages sent within the debounce, one per line
    "boa tarde, preciso de ajuda com meu pedido\natendente", "oi\nHUMANO",
])
def test_asking_for_a_person_is_recognised(text: str) -> None:
    assert asks_for_human(text)


@pytest.mark.parametrize("text", [
    "o atendente me disse que o prazo era 5 dias", "qual o horário do atendimento humano?",
    "quero saber o horario de atendimento humano aos sabados",
    "alguém pode receber o pedido por mim?", "quero que alguem receba meu pedido",
    "preciso saber se a pessoa que recebe precisa de documento", "vcs tem atendentes na loja?",
    "a pessoa que comprou não sou eu", "qual o prazo para trocar um produto?", "oi",
    # a carrier, a card company, a drug: words a person-request pattern must not take
    "quero mudar de operadora", "preciso falar com a operadora do cartão?",
    "quero saber se tem atendente no sábado", "preciso de remédio de uso humano",
    "o pedido passa por um operador?",
    "não quero falar com atendente, só o preço", "não precisa chamar atendente",
    "oi\nqual o horário do atendimento humano?",
])
def test_questions_that_only_mention_people_are_answered(text: str) -> None:
    assert not asks_for_human(text)
