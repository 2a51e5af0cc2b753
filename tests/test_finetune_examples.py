"""Training examples: targets keep units and stay short; refusals get passages without the
answer; held-out pairs never reach training; the prompt is the serving prompt."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from finetune.config import load
from finetune.curate import Pair
from finetune.examples import build, holds, target
from models.spec import REFUSAL
from rag import prompt

PASSAGE = ("A Loja Aurora troca produtos com defeito. O prazo para pedir a troca é de 90 dias "
           "corridos, contados a partir da data de entrega, conforme o Código de Defesa do "
           "Consumidor, e o frete de volta é pago pela loja.")


def test_target_is_the_clause_holding_the_answer_with_its_unit() -> None:
    t = target([PASSAGE], "90", max_words=12)
    assert "90 dias" in t and len(t.split()) <= 12 and t[0].isupper() and t.endswith(".")
    assert target([PASSAGE], "troca produtos com defeito", 30) == \
        "A Loja Aurora troca produtos com defeito."
    # An agent's own words (not in any passage) are kept as written.
    assert target([PASSAGE], "Pode trocar sim, em até 90 dias!", 30) == \
        "Pode trocar sim, em até 90 dias!"
    assert holds("Código de Defesa", "codigo de defesa") and not holds("abc", "")


class WordEmbedder:
    """Bag-of-words vectors: a real, deterministic embedder for ranking tests."""

    name, dim = "words", 1 << 14

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim)
        for w in text.lower().split():
            v[zlib.crc32(w.encode()) % self.dim] += 1  # stable across runs
        return v / (np.linalg.norm(v) or 1)

    def passages(self, texts: list[str]) -> np.ndarray:
        return np.array([self._vec(t) for t in texts])

    def query(self, text: str) -> np.ndarray:
        return self._vec(text)


def test_build_mixes_answers_and_refusals_and_holds_out_pairs() -> None:
    pairs = [Pair(f"qual o prazo {i}?", f"{i + 10} dias", "faquad", f"c{i}",
                  [f"O prazo do item {i} é de {i + 10} dias úteis."], [f"doc{i % 3}.md"])
             for i in range(40)]
    train, cal = build(pairs, WordEmbedder(), passages=2, negatives=0.25, calibration=0.1,
                       max_target_words=30, seed=1)
    kinds = [e.kind for e in train]
    assert len(cal) == 8 and {e.kind for e in cal} == {"answer", "refuse"}
    assert abs(kinds.count("refuse") / len(kinds) - 0.25) < 0.05
    held = {e.messages[-1]["content"] for e in cal}
    assert not held & {e.messages[-1]["content"] for e in train}
    for e in train:
        assert e.messages[0]["content"].startswith(prompt.DEFAULT_PERSONA)
        system, question = e.messages[0]["content"], e.messages[-1]["content"]
        answer = f"{int(question.split()[-1].rstrip('?')) + 10} dias"
        if e.kind == "refuse":
            assert e.completion == REFUSAL and answer not in system
        else:
            assert answer in e.completion and answer in system


def test_config_reads_yaml_with_overrides(tmp_path) -> None:
    cfg = load(__import__("pathlib").Path("finetune/configs/tiny.yaml"),
               ["max_steps=7", "out=/tmp/x"])
    assert cfg.max_steps == 7 and str(cfg.out) == "/tmp/x" and cfg.limit == 12


@pytest.mark.parametrize("text, why", [
    ("lr: [1,\n", "not valid YAML"), ("- lr\n- epochs\n", "mapping"), ("lr: abc\n", "lr"),
    ("1: x\n", "name is text"),
])
def test_a_broken_config_says_why(tmp_path, text: str, why: str) -> None:
    (tmp_path / "run.yaml").write_text(text)
    with pytest.raises(ValueError, match=why):
        load(tmp_path / "run.yaml")


def test_a_run_is_finished_at_its_last_step_or_where_the_config_stops_it(tmp_path) -> None:
    from finetune.fit import _finished

    (tmp_path / "trainer_state.json").write_text(json.dumps({"global_step": 60,
                                                             "max_steps": 90}))
    assert not _finished(tmp_path, 90)
    assert not _finished(tmp_path, -1)  # by epochs: the run's own last step decides
    assert _finished(tmp_path, 60)  # `--set max_steps=60` exports the checkpoint reached
    (tmp_path / "trainer_state.json").write_text(json.dumps({"global_step": 90,
                                                             "max_steps": 90}))
    assert _finished(tmp_path, -1)


def test_a_checkpoint_is_judged_as_serving_would_answer_at_its_threshold() -> None:
    from finetune.heldout import summary

    items = [{"kind": "answer", "answer": f"{n} dias"} for n in range(20)]
    items += [{"kind": "refuse", "answer": f"{n} dias"} for n in range(20)]
    # Answerable: right clause, low refusal score, except one scored high (wrongly refused)
    # and one wrong clause. Unanswerable: half scored high.
    asked = [{"kind": "answer", "p_refuse": 0.9 if n == 0 else 0.1,
              "reply": "O prazo é de 99 dias." if n == 1 else f"O prazo é de {n} dias."}
             for n in range(20)]
    asked += [{"kind": "refuse", "p_refuse": 0.95 if n % 2 else 0.05, "reply": "x"}
              for n in range(20)]
    r = summary(asked, items, budget=0.05)
    assert r["threshold"] == 0.9 and r["wrongly_refused"] == 0.05
    assert r["unanswerable_refused"] == 0.5
    assert r["containment"] == 18 / 20  # not the refused one, not the wrong clause


def test_documents_held_out_whole_never_reach_a_training_prompt() -> None:
    pairs = [Pair(f"qual o prazo {i}?", f"{i + 10} dias", "faquad", f"c{i}",
                  [f"O prazo do item {i} é de {i + 10} dias úteis."], [f"doc{i % 5}.md"])
             for i in range(40)]
    train, cal = build(pairs, WordEmbedder(), passages=2, negatives=0.25, calibration=0.1,
                       max_target_words=30, seed=1, holdout="documents")
    held_questions = {e.messages[-1]["content"] for e in cal}
    held_docs = {p.docs[0] for p in pairs if p.question in held_questions}
    # Every pair of a held-out document is held out, at least the share asked for.
    assert len(held_docs) == 1 and len(held_questions) == 8
    for e in train:
        assert e.messages[-1]["content"] not in held_questions
        assert not any(d in e.messages[0]["content"] for d in held_docs)


def test_pairs_naming_no_document_are_held_out_one_by_one() -> None:
    pairs = [Pair(f"qual o prazo {i}?", f"{i + 10} dias", "conversa", f"c{i}",
                  [f"O prazo do item {i} é de {i + 10} dias úteis."], [])
             for i in range(40)]
    train, cal = build(pairs, WordEmbedder(), passages=2, negatives=0.25, calibration=0.1,
                       max_target_words=30, seed=1, holdout="documents")
    held = {e.messages[-1]["content"] for e in cal}
    assert len(held) == 4  # the share asked for, not every document-less pair at once
    held_text = {p.passages[0] for p in pairs if p.question in held}
    assert not any(t in e.messages[0]["content"] for e in train for t in held_text)


def test_focused_prompts_show_the_closest_sentences_and_drop_lost_answers() -> None:
    # The answer sits in the sentence closest to the question, except for every fifth pair,
    # whose question is about the opening hours: its answer sentence is not shown, so that
    # pair teaches no answer (the target would not be in the prompt).
    pairs = [Pair(f"qual o prazo do item {i}" if i % 5 else f"a loja abre que horas {i}",
                  f"{i + 100} dias", "faquad", f"c{i}",
                  [f"A loja abre às 9 horas. O prazo do item {i} é de {i + 100} dias úteis. "
                   "O estacionamento é gratuito."], [f"doc{i}.md"])
             for i in range(40)]
    train, _ = build(pairs, WordEmbedder(), passages=2, negatives=0.25, calibration=0.1,
                     max_target_words=30, seed=1, sentences=1)
    for e in train:
        shown = e.messages[0]["content"].split("Trechos:\n", 1)[1]
        assert shown.count("\n[") == 0 and shown.count(". ") == 0  # one sentence, one item
        if e.kind == "answer":  # the reply quotes the one item shown, whole
            assert e.completion in shown and " é de " in e.completion
            assert not e.messages[-1]["content"].startswith("a loja abre")
    answered = {e.messages[-1]["content"] for e in train if e.kind == "answer"}
    assert len(answered) >= 25 and not any(q.startswith("a loja") for q in answered)


def test_focus_keeps_whole_passages_that_have_no_sentence() -> None:
    from finetune.examples import as_passage
    from rag.extractive import focus

    cells = [as_passage("taxas.md", "Pix 0%\nBoleto 2%")]  # lines of two words: no sentence
    assert focus(WordEmbedder(), "qual a taxa do boleto?", cells, 3) == cells
    prose = [as_passage("a.md", "O boleto vence em três dias úteis. A loja abre cedo.")]
    shown = focus(WordEmbedder(), "quando o boleto vence?", prose, 1)
    assert [p.text for p in shown] == ["O boleto vence em três dias úteis."]


def test_a_long_sentence_is_shown_as_clause_runs_that_fit_a_short_answer() -> None:
    from finetune.examples import as_passage
    from rag.extractive import ITEM_WORDS, focus, pieces

    long = ("O aluno que desejar trancar a matrícula deverá protocolar o pedido na secretaria, "
            "acompanhado dos documentos exigidos pelo colegiado do curso, "
            "no prazo máximo de trinta dias após o início do período letivo, "
            "sob pena de indeferimento do pedido e de perda da vaga no semestre seguinte.")
    parts = pieces(long)
    assert len(parts) > 1 and all(len(p.split()) <= ITEM_WORDS for p in parts)
    assert " ".join(parts).split() == long.split()  # nothing lost, nothing repeated
    assert pieces("Uma frase curta basta.") == ["Uma frase curta basta."]
    shown = focus(WordEmbedder(), "qual o prazo máximo após o início do período letivo?",
                  [as_passage("regras.md", long)], 1)
    assert len(shown) == 1 and "trinta dias" in shown[0].text
    assert len(shown[0].text.split()) <= ITEM_WORDS


def test_focus_puts_first_the_item_holding_the_questions_rare_terms(demo_kb) -> None:
    from rag.extractive import focus

    # Informal: e5 alone ranks the refund table's header first; "reembolso" is rare in the shop.
    question = "em qnto tempo cai o reembolso?"
    found = demo_kb.search("demo", question, top_k=2)
    by_e5 = focus(demo_kb.embedder, question, found, 3)
    ranked = focus(demo_kb.embedder, question, found, 3, demo_kb.idf("demo"), 0.15)
    assert "5 dias úteis" not in by_e5[0].text
    assert "reembolso é feito em até 5 dias úteis" in ranked[0].text


def test_training_prompts_rank_items_as_the_version_will_be_served(demo_kb) -> None:
    question = "em qnto tempo cai o reembolso?"
    found = demo_kb.search("demo", question, top_k=2)
    pairs = [Pair(question, "em até 5 dias úteis", "demo", "c0", [p.text for p in found],
                  [p.doc for p in found])]
    first = {}
    for terms in (0.0, 0.15):
        train, _ = build(pairs, demo_kb.embedder, passages=2, negatives=0.0, calibration=0.0,
                         max_target_words=30, seed=1, sentences=3, focus_terms=terms)
        [answer] = train
        first[terms] = answer.messages[0]["content"].split("Trechos:\n", 1)[1].split("\n\n")[0]
    assert "reembolso é feito em até 5 dias úteis" in first[0.15]
    assert "5 dias úteis" not in first[0.0]
