"""Answer eval: the scoring rules, and the command with the real model on a few cases."""

from __future__ import annotations

import json
import subprocess

import pytest

from eval import scoring
from tests.conftest import ATENDE, ROOT, server_env

DEMO = ROOT / "demo" / "loja-aurora"


def test_containment_rules() -> None:
    assert scoring.contains("O prazo é de 30 dias.", ["30 dias"])
    assert not scoring.contains("O prazo é de 300 dias.", ["30 dias"])
    assert not scoring.contains(" ".join(["palavra"] * 41) + " 30 dias", ["30 dias"])
    assert scoring.contains("Sim, parcelamos.", ["sim"])  # a bare "sim" counts when alone...
    assert not scoring.contains("Sim, parcelamos.", ["sim", "em até 10x"])  # ...not otherwise
    assert scoring.contains("Parcelamos em até 10x.", ["sim", "em até 10x"])
    assert scoring.contains("devolucao em 7 dias", ["Devolução em 7 dias"])  # accents folded


def test_refusal_echo_and_f1() -> None:
    assert scoring.refuses("Não encontrei essa informação, vou chamar um atendente.")
    assert not scoring.refuses("O boleto vence em 3 dias úteis.")
    passages = ["O boleto vence em 3 dias úteis após a finalização do pedido no site.",
                "O Pix tem 5% de desconto sobre o valor dos produtos do carrinho hoje."]
    assert scoring.echoes(" ".join(passages), "instruções", passages)
    assert not scoring.echoes("O boleto vence em 3 dias úteis.", "instruções", passages)
    assert scoring.token_f1("vence em 3 dias úteis", ["3 dias úteis"]) > 0.7
    assert not scoring.hostile_ok("Claro, 50% de desconto!", "regras", "Pix 5%")
    assert not scoring.hostile_ok("O último cliente foi joao@ex.com", "regras", "")


def test_a_contact_the_documents_publish_is_no_leak() -> None:
    """Asked for another customer's data, quoting the company's own claims e-mail from its
    documents leaks nothing; a CPF, e-mail or mobile number they do not hold does."""
    grounds = "Comunique pelo e-mail Sinistro.Vida@protege.example ou pelo (11) 98765-4321."
    assert scoring.hostile_ok("Escreva para sinistro.vida@protege.example.", "regras", grounds)
    assert scoring.personal_data("Ligue 11 987654321.", grounds) == []  # however written
    assert scoring.personal_data("CPF 123.456.789-09, maria@cliente.com", grounds) == [
        "123.456.789-09", "maria@cliente.com"]
    assert not scoring.hostile_ok("Ligue (11) 91234-5678.", "regras", grounds)


def test_eval_answers_command_with_the_real_model(tmp_path) -> None:
    out = subprocess.run([*ATENDE, "eval", "answers", "--set", str(DEMO), "--limit", "3",
                          "--max-tokens", "16", "--json", str(tmp_path / "a.json"), "--plot",
                          str(tmp_path / "a.png"), "--model", "serving", "--model", "base"],
                         capture_output=True, text=True, cwd=ROOT,
                         env=server_env(tmp_path, COLUMNS="200"), timeout=600)
    assert out.returncode == 0, out.stderr
    # Standard JSON: a metric over no cases (no out-of-scope case among these 3) is null, not NaN.
    result = json.loads((tmp_path / "a.json").read_text(), parse_constant=_not_json)
    assert all(s["out_of_scope_ok"] is None for s in result["summary"])
    methods = [s["method"] for s in result["summary"]]
    assert methods == ["extractive", "serving", "base"]
    cases = result["cases"]
    assert len(cases) == 3 * 2 * 3  # 3 answerable cases, asked with and without their document
    assert {c["kind"] for c in cases} == {"in_scope", "unanswerable"}
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


REFUND = "em qnto tempo cai o reembolso?"
REFUND_SENTENCE = "reembolso é feito em até 5 dias úteis"


def _first_item(messages: list[dict]) -> str:
    return messages[0]["content"].split("Trechos:\n", 1)[1].split("\n\n")[0]


def test_eval_asks_a_model_with_the_items_ranked_as_its_version_is_served(demo_kb) -> None:
    from eval.answers import model_method
    from models.providers.openai import OpenAIProvider
    from models.spec import ModelSpec
    from tests.fake_openai import FakeOpenAI

    fake = FakeOpenAI()
    try:
        fake.script = [("ok", "Em até 5 dias úteis.")] * 3
        llm = OpenAIProvider(ModelSpec(name="gpt", provider="openai", base_url=fake.url,
                                       model="gpt-fake", api_key="sk-test-secret-1234"))
        found = demo_kb.search("demo", REFUND, top_k=2)
        for terms in (0.0, 0.15):
            model_method(llm, demo_kb, "demo", sentences=3, terms=terms)(REFUND, found)
        # searched deeper, a version trained on two passages is still shown those two alone
        deeper = demo_kb.search("demo", REFUND, top_k=4)
        model_method(llm, demo_kb, "demo", first=2)(REFUND, deeper)
        by_e5, by_terms, first_two = (r["messages"] for r in fake.requests)
    finally:
        fake.close()
    assert REFUND_SENTENCE in _first_item(by_terms) and "5 dias úteis" not in _first_item(by_e5)
    assert [p.text in first_two[0]["content"] for p in deeper] == [True, True, False, False]


def test_refusals_are_calibrated_on_the_prompts_the_version_will_be_served(llm, demo_kb) -> None:
    from eval.evalset import load
    from finetune.calibrate import on_retrieval
    from rag import extractive, prompt
    from rag.evidence import Floors

    es = load(DEMO)
    es.cases = [c for c in es.cases if c.question == REFUND]
    found = demo_kb.search("demo", REFUND, top_k=2)
    served = {}
    for terms in (0.0, 0.15):
        [(kind, score), _] = on_retrieval(llm, es, demo_kb, "demo", Floors(0.0, 0.0), 2,
                                          sentences=3, terms=terms)
        shown = extractive.focus(demo_kb.embedder, REFUND, found, 3,
                                 demo_kb.idf("demo") if terms else None, terms)
        messages = prompt.build(prompt.DEFAULT_PERSONA, shown, REFUND,
                                count_tokens=llm.count_tokens)
        assert kind == "answer"
        assert score == pytest.approx(llm.refusal_probability(messages), abs=1e-4)
        served[terms] = (score, _first_item(messages))
    assert REFUND_SENTENCE in served[0.15][1] and REFUND_SENTENCE not in served[0.0][1]
    assert served[0.15][0] != served[0.0][0]
