"""Evidence before the model: coverage, the floors, their calibration, and what makes a case
unanswerable in an eval set."""

from __future__ import annotations

import json

from eval import calibration
from eval.evalset import load
from rag.evidence import Floors, coverage, enough
from rag.index import Passage


def _p(text: str, score: float = 2.0, heading: str = "") -> Passage:
    return Passage(id="1", doc="d.md", heading=heading, position=0, text=text, score=score)


def test_coverage_counts_the_question_terms_one_passage_holds() -> None:
    trocas = _p("O prazo para devolução é de 30 dias corridos.")
    assert coverage("qual o prazo de devolucao?", [trocas]) == 1.0  # accents folded, stems met
    assert coverage("qual o prazo de devolução do notebook?", [trocas]) == 2 / 3
    # The best single passage counts, not words spread over several.
    assert coverage("prazo do notebook", [_p("o prazo é curto"), _p("um notebook novo")]) == 0.5
    assert coverage("prazo do notebook", [_p("texto", heading="Notebook > Prazo")]) == 1.0
    assert coverage("oi, tudo bem?", [trocas]) == 0.0  # no terms at all: nothing to cover
    assert coverage("prazo", []) == 0.0


def test_both_floors_must_be_met() -> None:
    floors = Floors(score=1.5, coverage=0.5)
    question = "qual o prazo de devolução do notebook?"
    assert enough(question, [_p("prazo de devolução: 30 dias", score=1.6)], floors)
    assert not enough(question, [_p("prazo de devolução: 30 dias", score=1.4)], floors)
    assert not enough(question, [_p("entregamos em todo o Brasil", score=3.0)], floors)
    assert not enough(question, [], Floors(0.0, 0.0))


def test_calibration_refuses_the_most_unanswerable_within_the_budget() -> None:
    answerable = [(2.0, 1.0)] * 18 + [(1.3, 0.9), (2.0, 0.2)]
    unanswerable = [(1.4, 0.3)] * 10 + [(2.0, 0.9)] * 2
    at_5 = calibration.best(answerable, unanswerable, budget=0.05)
    assert at_5.wrongly_refused <= 0.05
    assert at_5.wrongly_answered == 2 / 12  # only the two that look answerable get through
    at_0 = calibration.best(answerable, unanswerable, budget=0.0)
    assert at_0.wrongly_refused == 0.0 and at_0.floors.coverage <= 0.2
    assert at_0.wrongly_answered > at_5.wrongly_answered


def test_a_case_is_unanswerable_only_without_every_document_that_answers_it(tmp_path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "trocas.md").write_text("# Trocas\nO prazo para trocar é de 30 dias corridos.\n")
    (docs / "faq.md").write_text("Perguntas. O prazo para TROCAR é de 30 dias corridos!\n")
    (docs / "politica.md").write_text("Trocas: em até trinta dias corridos, com nota.\n")
    (docs / "frete.md").write_text("Frete grátis acima de 30 reais. Entrega em 5 dias.\n")
    case = {"id": "c1", "question": "qual o prazo de troca?",
            "answers": ["30 dias", "trinta dias corridos"],
            "sources": [{"doc": "docs/trocas.md",
                         "text": "O prazo para trocar é de 30 dias corridos."}]}
    (tmp_path / "qa.jsonl").write_text(json.dumps(case, ensure_ascii=False) + "\n")
    es = load(tmp_path)
    # faq.md repeats the passage; politica.md holds an answer; frete.md only shares words.
    assert es.answering_docs(es.cases[0]) == ["faq.md", "politica.md", "trocas.md"]
