"""Evidence before the model: coverage, the floors, their calibration, and what makes a case
unanswerable in an eval set."""

from __future__ import annotations

import json
import math

import pytest

from eval import calibration
from eval.evalset import load
from rag import evidence
from rag.edge import EdgeClient
from rag.evidence import Floors, Learned, Signals, coverage, enough
from rag.index import KnowledgeBase, Passage
from tests.conftest import DEMO_DOCS

DEMO_SET = DEMO_DOCS.parent


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


def test_a_customers_typo_of_a_word_the_passage_holds_is_covered() -> None:
    visita = _p("O horário de visita na internação é das 10h às 20h, todos os dias.")
    assert coverage("qual o horario de vizita?", [visita]) == 1.0  # s -> z
    assert coverage("qual o horario de visitta?", [visita]) == 1.0  # a letter doubled
    assert coverage("horaio de visita", [visita]) == 1.0  # a letter dropped
    # a short word is a word of its own, not a typo ("boto" is not "botox"); nor is a second
    # edit ("vizitta")
    assert coverage("botox", [_p("O boto cor-de-rosa vive no rio.")]) == 0.0
    assert coverage("vizitta", [visita]) == 0.0


def test_both_floors_must_be_met() -> None:
    floors = Floors(score=1.5, coverage=0.5)
    question = "qual o prazo de devolução do notebook?"
    assert enough(question, [_p("prazo de devolução: 30 dias", score=1.6)], floors)
    assert not enough(question, [_p("prazo de devolução: 30 dias", score=1.4)], floors)
    assert not enough(question, [_p("entregamos em todo o Brasil", score=3.0)], floors)
    assert not enough(question, [], Floors(0.0, 0.0))


def _s(score: float, covered: float, weighted: float = 0.0, similarity: float = 0.0) -> Signals:
    return Signals(score, covered, weighted, similarity)


def test_calibration_refuses_the_most_unanswerable_within_the_budget() -> None:
    answerable = [_s(2.0, 1.0)] * 18 + [_s(1.3, 0.9), _s(2.0, 0.2)]
    unanswerable = [_s(1.4, 0.3)] * 10 + [_s(2.0, 0.9)] * 2
    at_5 = calibration.best(answerable, unanswerable, budget=0.05)
    assert at_5.wrongly_refused <= 0.05
    assert at_5.wrongly_answered == 2 / 12  # only the two that look answerable get through
    at_0 = calibration.best(answerable, unanswerable, budget=0.0)
    assert at_0.wrongly_refused == 0.0 and at_0.rule.coverage <= 0.2
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


def test_a_missing_rare_term_weighs_more_than_a_missing_common_one(tmp_path, e5) -> None:
    kb = KnowledgeBase(EdgeClient(str(tmp_path)), e5)
    for i in range(6):  # every document names "prazo"; one names "trancamento"
        kb.ingest("c", f"d{i}.md", f"O prazo do serviço {i} é de {i + 2} dias úteis.")
    kb.ingest("c", "t.md", "O trancamento de matrícula é pedido na secretaria.")
    idf = kb.idf("c")
    question = "qual o prazo do trancamento?"
    common = [_p("O prazo é de 5 dias.")]
    rare = [_p("O trancamento é pedido na secretaria.")]
    assert coverage(question, common) == coverage(question, rare) == 0.5
    assert coverage(question, rare, idf) > 0.5 > coverage(question, common, idf)
    kb.client.close()


def test_idf_is_counted_again_when_the_collection_changes(tmp_path, e5) -> None:
    kb = KnowledgeBase(EdgeClient(str(tmp_path)), e5)
    kb.ingest("c", "a.md", "O trancamento de matrícula é pedido na secretaria.")
    kb.ingest("c", "b.md", "Entregamos em todo o Brasil.")
    term = evidence.lexical.tokens("trancamento")[0]
    # BM25's idf, log(1 + (N - df + 0.5) / (df + 0.5)), over passages (one per document here)
    assert kb.idf("c")(term) == pytest.approx(math.log(2))  # N 2, df 1
    kb.ingest("c", "b.md", "Trancamento: pedido na secretaria.")  # replaced, same size
    assert kb.idf("c")(term) == pytest.approx(math.log(1.2))  # N 2, df 2
    kb.delete("c", "b.md")
    assert kb.idf("c")(term) == pytest.approx(math.log(4 / 3))  # N 1, df 1
    kb.client.close()


def test_idf_is_counted_again_after_another_process_replaces_a_document(tmp_path, e5) -> None:
    # Two servers on one Qdrant: each keeps its own counts. A replace that keeps the passage
    # count must still reach the other's idf.
    client = EdgeClient(str(tmp_path))
    serving, uploading = KnowledgeBase(client, e5), KnowledgeBase(client, e5)
    uploading.ingest("c", "a.md", "O trancamento de matrícula é pedido na secretaria.")
    uploading.ingest("c", "b.md", "Entregamos em todo o Brasil.")
    term = evidence.lexical.tokens("trancamento")[0]
    assert serving.idf("c")(term) == pytest.approx(math.log(2))  # N 2, df 1
    uploading.ingest("c", "b.md", "Trancamento: pedido na secretaria.")  # same size
    assert serving.idf("c")(term) == pytest.approx(math.log(1.2))  # N 2, df 2
    assert uploading.documents("c") == {"a.md": 1, "b.md": 1}
    serving.ensure("c")  # the collection's embedder mark survives the revisions
    client.close()


def test_a_learned_rule_refuses_within_its_budget(tmp_path) -> None:
    # Unanswerable questions find passages as well scored as answerable ones; what tells them
    # apart is that the passages lack the question's rare terms and its closest sentence.
    answerable = [_s(2.0 + i / 100, 0.8, 0.9 - i / 200, 0.90) for i in range(40)]
    unanswerable = [_s(2.0 + i / 100, 0.8, 0.5 - i / 100, 0.86) for i in range(40)]
    unanswerable += answerable[:4]  # indistinguishable: refusing them costs 4 wrong refusals
    floors = calibration.best(answerable, unanswerable, budget=0.05)
    learned = evidence.fit(answerable, unanswerable, budget=0.05, top_k=4, fitted_on="test")
    found = calibration.rates(answerable, unanswerable, learned)
    assert found.wrongly_refused <= 0.05
    assert all(map(learned.refuses, unanswerable[:40]))
    assert found.wrongly_answered < floors.wrongly_answered
    learned.save(tmp_path / "rule.json")
    assert Learned.load(tmp_path / "rule.json") == learned
    other = json.loads((tmp_path / "rule.json").read_text()) | {"features": ["score"]}
    (tmp_path / "rule.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="other features"):
        Learned.load(tmp_path / "rule.json")
    with pytest.raises(ValueError, match="knowledge base"):
        enough("qual o prazo?", [_p("O prazo é de 5 dias.")], learned)


def test_the_rule_and_the_models_threshold_chosen_together_share_one_budget() -> None:
    # The rule doubts some answerable questions (little coverage), the model others (high
    # refusal probability); each tells apart unanswerable questions the other cannot.
    rule = Learned([0.0, -2.0, 0.0, 0.0], [0.0] * 3, [1.0] * 3, 0.5, top_k=4)
    answerable = [(_s(2.0, 0.8, 0.9 if i >= 4 else 0.1, 0.9), 0.9 if i < 8 and i >= 4 else
                   i / 100) for i in range(40)]
    by_rule = [(_s(2.0, 0.8, 0.05, 0.9), 0.2) for _ in range(20)]
    by_model = [(_s(2.0, 0.8, 0.9, 0.9), 0.95) for _ in range(20)]
    unanswerable = by_rule + by_model

    def refused(rule: Learned, threshold: float, group: list) -> float:
        return sum(rule.refuses(s) or p >= threshold for s, p in group) / len(group)

    joint = calibration.choose_with_model(rule, answerable, unanswerable, [], budget=0.1)
    assert refused(joint.rule, joint.model_threshold, answerable) <= 0.1
    assert refused(joint.rule, joint.model_threshold, unanswerable) == 1.0
    # Chosen apart, each within the whole budget, together they overspend it.
    apart = calibration.choose(rule, [s for s, _ in answerable], [s for s, _ in unanswerable],
                               [], 0.1, veto=False)
    alone = sorted(p for _, p in answerable)[-4]  # the model refusing 4 of 40 at most
    assert refused(apart, math.inf, answerable) == 0.1
    assert refused(apart, alone, answerable) == 0.2


def test_a_missing_or_corrupt_evidence_model_is_a_clear_error(tmp_path) -> None:
    from pydantic import ValidationError

    from server.settings import Settings

    features = list(evidence.FEATURES)
    short = {"features": features, "weights": [1.0], "mean": [0.0] * 3, "scale": [1.0] * 3,
             "threshold": 0.5, "top_k": 4}
    for content in (None, "{not json", json.dumps({"features": features}), json.dumps(short)):
        path = tmp_path / "rule.json"
        path.unlink(missing_ok=True)
        if content is not None:
            path.write_text(content)
        with pytest.raises(ValidationError, match="ATENDE_EVIDENCE_MODEL: cannot read"):
            Settings(data_dir=tmp_path, evidence_model=path)
    fitted = {**short, "weights": [1.0] * 4, "top_k": 2}
    path.write_text(json.dumps(fitted))
    with pytest.raises(ValidationError, match="fitted on 2 passages"):
        Settings(data_dir=tmp_path, evidence_model=path)  # serving searches 4
    assert Settings(data_dir=tmp_path, evidence_model=path, retrieval_top_k=2).evidence().top_k \
        == 2
    assert Settings(data_dir=tmp_path, evidence_model="floors").evidence() == Floors(1.2, 0.25)


def test_the_default_rule_is_the_bundled_one_where_it_fits_the_passages_searched(
        tmp_path) -> None:
    from server.settings import DEFAULT_EVIDENCE, Settings

    bundled = Learned.load(DEFAULT_EVIDENCE)
    assert bundled.features == evidence.NEAR_MISS_FEATURES and bundled.top_k == 4
    assert Settings(data_dir=tmp_path).evidence() == bundled  # serving's 4 passages
    # fitted on 4 passages, it does not judge 2: the floors do, rather than a failed start
    assert Settings(data_dir=tmp_path, retrieval_top_k=2).evidence() == Floors(1.2, 0.25)
    assert Settings(data_dir=tmp_path).evidence(top_k=2) == Floors(1.2, 0.25)


def test_fitting_keeps_to_the_budget_through_ties_and_refuses_nonsense() -> None:
    same = [_s(2.0, 0.8, 0.7, 0.88)] * 20
    apart = [_s(1.0 + i / 50, 0.4, 0.2, 0.84) for i in range(20)]
    rule = evidence.fit(same, apart, budget=0.1, top_k=4)
    # 20 tied answerable questions: refusing any refuses all 20, over the 10% budget.
    assert calibration.rates(same, apart, rule).wrongly_refused == 0.0
    assert calibration.rates(same, apart, rule).wrongly_answered == 0.0
    constant = [_s(2.0, 0.8, 0.7, 0.88)] * 20  # every feature constant: no overflow
    assert 0.0 <= rule.unanswerable(_s(99.0, 1.0, 1.0, 1.0)) <= 1.0
    assert evidence.fit(constant, constant, budget=0.0, top_k=4).threshold > 0
    for bad in (([], apart, 0.1), (same, [], 0.1), (same, apart, 1.0)):
        with pytest.raises(ValueError, match="fitting needs"):
            evidence.fit(*bad, top_k=4)


def test_serving_with_a_learned_rule_hands_off_before_the_model(sessions, tmp_path, llm,
                                                                demo_kb) -> None:
    import httpx

    from rag.index import Search
    from server.runtime import Runtime
    from server.services import assistant
    from server.settings import Settings

    es = load(DEMO_SET)
    answerable, unanswerable = calibration.measures(es, demo_kb, "demo", Search(), top_k=4)
    rule = evidence.fit(answerable, unanswerable, budget=0.05, top_k=4, fitted_on="demo")
    assert calibration.rates(answerable, unanswerable, rule).wrongly_answered < \
        calibration.rates(answerable, unanswerable, Floors(1.2, 0.25)).wrongly_answered
    rule.save(tmp_path / "rule.json")
    settings = Settings(data_dir=tmp_path, llm_max_tokens=16, kb_collection="demo",
                        evidence_model=tmp_path / "rule.json")
    local = settings.local_model().model_copy(update={"path": llm.path})
    rt = Runtime(settings, {"local": (local, llm)}, demo_kb, httpx.Client())
    use = assistant.use_for(settings)
    away = assistant.answer(rt, sessions, "vcs vendem notebook?", [], use)
    assert (away.handoff, away.reason, away.completion) == (True, "no_passages", None)
    asked = assistant.answer(rt, sessions, "qto custa a entrega expressa em sao paulo", [], use)
    assert asked.reason != "no_passages" and asked.completion is not None
