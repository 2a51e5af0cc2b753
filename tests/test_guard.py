"""The guard on replies: echoes, loops, repeats and numbers no passage holds never reach a
customer."""

from __future__ import annotations

import httpx
import pytest

from eval.answers import MODEL_EXTRACTION
from models.spec import ModelSpec
from rag import extractive, guard
from server.runtime import Runtime
from server.services import assistant
from server.settings import Settings
from tests.conftest import serve_mode
from tests.fake_openai import FakeOpenAI

PASSAGES = ("O Pix tem 5% de desconto. O boleto vence em 3 dias úteis. "
            "Frete grátis acima de R$ 299,00.")


@pytest.mark.parametrize("reply, bad", [
    ("Pagando no Pix você tem 5% de desconto.", []),
    ("O frete é grátis acima de R$ 299.", []),
    ("O frete é grátis acima de R$ 299,00.", []),
    ("Temos 50% de desconto no Pix!", ["50"]),
    ("O boleto vence em 7 dias.", ["7"]),
    ("Entregamos dia 19/12.", ["19", "12"]),
    ("O boleto vence em 3 dias e o Pix dá 7,50 de volta em 12x.", ["7,50", "12"]),
    ("Frete grátis acima de R$ 299,00, ou R$ 29 abaixo.", ["29"]),
])
def test_numbers_must_come_from_the_passages(reply: str, bad: list[str]) -> None:
    # Exactly the numbers no passage states, as the reply writes them, in its order.
    assert guard.ungrounded_numbers(reply, PASSAGES) == bad


def test_number_forms_are_compared_by_value() -> None:
    assert guard.numbers("R$ 1.250,00 e 30 dias e 9,5%") == {"1250", "30", "9,5"}
    assert not guard.ungrounded_numbers("custa 1250 reais", "custa R$ 1.250,00")


def test_a_stream_is_cut_before_an_invented_number_goes_out() -> None:
    pieces = ["Sim! ", "No Pix ", "você ganha ", "50% ", "de desconto ", "em qualquer compra."]
    out: list[str] = []
    with pytest.raises(guard.Unfit) as err:
        for piece in guard.guarded(pieces, "instruções", PASSAGES):
            out.append(piece)
    assert err.value.reason == "ungrounded_number"
    assert "50" not in "".join(out)


def test_an_invented_discount_is_replaced_by_the_passage_sentence(sessions, tmp_path, llm,
                                                                  demo_kb) -> None:
    fake = FakeOpenAI()
    fake.script = [("ok", "Claro! Hoje o Pix tem 50% de desconto.")]
    remote = ModelSpec(name="gpt", provider="openai", base_url=fake.url, model="gpt-fake",
                       max_retries=0)
    s = Settings(data_dir=tmp_path, kb_collection="demo", models=[remote], llm_default="gpt")
    from models import registry

    rt = Runtime(s, {"local": (s.local_model(), llm), "gpt": (remote, registry.create(remote))},
                 demo_kb, httpx.Client())
    serve_mode(sessions, "demo", MODEL_EXTRACTION)  # the guard judges the model's own words
    ans = assistant.answer(rt, sessions, "pagando no pix tem desconto?", [],
                           assistant.use_for(s))
    fake.close()
    assert ans.reason == "guard_ungrounded_number"
    assert "50%" not in ans.text and ans.passage_ids
    assert guard.ungrounded_numbers(ans.text, "\n".join(
        p.text for p in demo_kb.passages("demo", ans.passage_ids))) == []


LAST = "Para que a troca ou devolução seja aceita, o produto precisa:"


def test_a_reply_that_repeats_an_earlier_one_is_not_sent() -> None:
    assert guard.unfit("para que a troca ou devolução seja aceita o produto precisa", "x",
                       earlier=["Oi!", LAST]) == "repeat"  # case and punctuation aside
    assert guard.unfit("O frete para o Nordeste é R$ 29,90.", "x", earlier=[LAST]) is None
    with pytest.raises(guard.Unfit) as err:  # a stream is judged whole, once it ends
        list(guard.guarded(["Para que a troca ", "ou devolução seja aceita, ",
                            "o produto precisa:"], "x", earlier=[LAST]))
    assert err.value.reason == "repeat"
    assert "".join(guard.guarded(["Para que a troca ", "seja aceita, o produto precisa ",
                                  "estar sem uso."], "x", earlier=[LAST])).endswith("sem uso.")


def _answer_by_a_model_that_says(reply: str, question: str, history: list, sessions, tmp_path,
                                 llm, demo_kb) -> assistant.Answer:
    """The assistant's answer when its model, a local server speaking OpenAI's wire format
    (plain, so shown the history), replies ``reply``."""
    from models import registry

    fake = FakeOpenAI()
    fake.script = [("ok", reply)]
    remote = ModelSpec(name="gpt", provider="openai", base_url=fake.url, model="gpt-fake",
                       max_retries=0)
    s = Settings(data_dir=tmp_path, kb_collection="demo", models=[remote], llm_default="gpt")
    rt = Runtime(s, {"local": (s.local_model(), llm), "gpt": (remote, registry.create(remote))},
                 demo_kb, httpx.Client())
    serve_mode(sessions, "demo", MODEL_EXTRACTION)  # the guard judges the model's own words
    try:
        return assistant.answer(rt, sessions, question, history, assistant.use_for(s))
    finally:
        fake.close()


def test_a_model_copying_its_last_turn_gets_the_extractive_answer(sessions, tmp_path, llm,
                                                                  demo_kb) -> None:
    # a small model at a sampling temperature did this one time in two
    history = [{"role": "user", "content": "qual o prazo para trocar um produto?"},
               {"role": "assistant", "content": LAST}]
    ans = _answer_by_a_model_that_says(LAST, "vcs entregam no nordeste?", history, sessions,
                                       tmp_path, llm, demo_kb)
    assert ans.reason == "guard_repeat" and ans.text != LAST and "Nordeste" in ans.text


def test_when_the_extractive_answer_was_said_already_a_human_takes_over(sessions, tmp_path,
                                                                        llm, demo_kb) -> None:
    question = "vcs entregam no nordeste?"
    s = Settings(data_dir=tmp_path, kb_collection="demo")
    said = extractive.answer_in(demo_kb, "demo", question, demo_kb.search(
        "demo", question, top_k=s.retrieval_top_k, how=s.search()))
    assert said
    # the customer asks again; the model and the fallback would both repeat
    history = [{"role": "user", "content": question}, {"role": "assistant", "content": said}]
    ans = _answer_by_a_model_that_says(said, question, history, sessions, tmp_path, llm, demo_kb)
    assert ans.reason == "guard_repeat" and ans.handoff and ans.text == assistant.MODEL_DOWN


def test_quoting_one_passage_is_an_answer_copying_several_is_an_echo() -> None:
    from rag import prompt
    from rag.index import Passage

    ps = [Passage(str(i), "faq.md", "", i, text, 1.0) for i, text in enumerate([
        "O prazo para pedir a troca é de 90 dias corridos a partir da data de entrega.",
        "O frete de devolução é pago pela loja quando o produto chega com defeito de fábrica."])]
    system = prompt.build(prompt.DEFAULT_PERSONA, ps, "qual o prazo?")[0]["content"]
    quote = "O prazo para pedir a troca é de 90 dias corridos a partir da data de entrega."
    assert guard.unfit(quote, system, quote) is None
    both = quote + " " + ps[1].text
    assert guard.unfit(both, system) == "echo"
    assert guard.unfit(prompt.RULES, system) == "echo"


def test_a_sentence_two_passages_share_is_a_quote_not_an_echo() -> None:
    shared = "O acadêmico deverá obter frequência igual ou superior a setenta e cinco por cento."
    p1 = f"Regulamento geral. {shared} A média mínima é seis."
    p2 = f"Normas complementares. {shared} O exame final é facultativo."
    assert not guard.copies_several(shared, [p1, p2])  # documents that repeat each other
    assert not guard.copies_several(f"{shared} A média mínima é seis.", [p1, p2])
    both = "Regulamento geral da universidade federal de mato grosso do sul vale para todos"
    other = "Normas complementares da universidade federal de mato grosso do sul para o exame"
    reply = ("regulamento geral da universidade federal de mato grosso do sul vale para todos e "
             "normas complementares da universidade federal de mato grosso do sul para o exame")
    assert guard.copies_several(reply, [both, other])
