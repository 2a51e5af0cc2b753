"""The answer mode, a choice per knowledge base made by the gate (issue #29, item 6): extraction
is judged like any version and replaces a model that answers worse, with the reason; the choice
is kept per knowledge base, shown by the API and the CLI, and serving honours it: in extraction
mode no model is called."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from eval import answers, evalset, gate
from eval.answers import CHECKED, EXTRACTION, MODEL, MODEL_EXTRACTION, MODES
from models import registry
from models.base import ChatMessage
from models.spec import ModelSpec
from rag import extractive
from rag.evidence import Floors
from server.services import answer_modes
from server.services.model_versions import DEFAULT_ADAPTER
from tests.conftest import ATENDE, ROOT, free_port, server_env
from tests.fake_openai import FakeOpenAI

DEMO = ROOT / "demo" / "loja-aurora"
ADMIN = {"Authorization": "Bearer test-admin-token"}
EXCHANGE = "qual o prazo para trocar um produto?"
# A model that answers every question politely and holds no answer: fit (the guard lets it
# through), grounded, and useless; extraction quotes the passages instead.
USELESS = "Obrigado pelo contato, ficamos felizes em ajudar."


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    server.script = [("ok", USELESS)] * 200
    yield server
    server.close()


def test_extraction_takes_part_in_the_gate_and_replaces_a_model_that_answers_worse(
        fake: FakeOpenAI, demo_kb) -> None:  # type: ignore[no-untyped-def]
    llm = registry.create(ModelSpec(name="gpt", provider="openai", base_url=fake.url,
                                    model="gpt-fake", api_key="sk-test-secret-1234"))
    rule = Floors(1.2, 0.25)  # serving's default evidence floors
    methods = {EXTRACTION: answers.extraction_method(demo_kb, "demo", rule),
               **answers.modes_of("serving", answers.model_method(llm, demo_kb, "demo",
                                                                  rule=rule), demo_kb, "demo")}
    outcomes = answers.run(evalset.load(DEMO), demo_kb, "demo", methods, top_k=4)
    by_mode = answers.by_mode(outcomes, "serving")
    assert set(by_mode) == set(MODES) and all(by_mode.values())
    # the model modes read one reply: the model was asked once per question let through
    assert len(fake.requests) == sum(o.method == "serving" and o.reply == USELESS
                                     for o in outcomes)

    choice = gate.choose_mode(by_mode, MODEL_EXTRACTION)
    assert set(choice.verdicts) == {EXTRACTION, MODEL, CHECKED}
    # a model that never refuses checks nothing: model-checked quotes what extraction quotes
    assert [o.reply for o in by_mode[CHECKED]] == [o.reply for o in by_mode[EXTRACTION]]
    got = {d.metric: d for d in choice.verdicts[EXTRACTION].deltas}
    assert got["containment"].serving == 0.0 < got["containment"].candidate
    assert got["containment"].low > 0 and not any(d.worse for d in got.values())
    assert choice.mode == EXTRACTION
    assert choice.reason.startswith("extraction replaces model+extraction: containment "
                                    f"{got['containment'].candidate:.3f} vs 0.000")
    # where extraction serves, the model must beat it: it does not, and the reason says so
    kept = gate.choose_mode(by_mode, EXTRACTION)
    assert kept.mode == EXTRACTION and not any(v.passed for v in kept.verdicts.values())
    assert kept.reason.startswith("extraction kept; no other mode passed the gate")
    assert "model+extraction: containment is not better beyond noise" in kept.reason


def test_serving_honours_the_mode_kept_for_its_knowledge_base(
        sessions: sessionmaker[Session], tmp_path: Path, demo_kb) -> None:  # type: ignore[no-untyped-def]
    from server.runtime import Runtime
    from server.services import api_answers, assistant
    from server.settings import Settings

    # The only model is an OpenAI-compatible server on a port nothing listens on.
    spec = ModelSpec(name="gpt", provider="openai", base_url=f"http://127.0.0.1:{free_port()}/v1",
                     model="gpt-down", api_key="sk-none", max_retries=0, timeout_s=5)
    settings = Settings(data_dir=tmp_path, kb_collection="demo", models=[spec],
                        llm_default="gpt", llm_fallback=[])
    rt = Runtime(settings, {"gpt": (spec, registry.create(spec))}, demo_kb, httpx.Client())
    use = assistant.use_for(settings)
    assert answer_modes.current(sessions, "demo").chosen_by == "default"
    down = assistant.answer(rt, sessions, EXCHANGE, [], use)
    assert (down.reason, down.handoff) == ("model_error", True)  # the default asks the model

    why = "extraction replaces model+extraction: containment 0.455 vs 0.227"
    kept = answer_modes.record(sessions, "demo", gate.ModeChoice(EXTRACTION, MODEL_EXTRACTION,
                                                                 why, {}),
                               version="faquad-v5", measured={"set": "demo"})
    assert (kept.mode, kept.reason, kept.chosen_by) == (EXTRACTION, why, "gate")
    ans = assistant.answer(rt, sessions, EXCHANGE, [], use)
    found = demo_kb.search("demo", EXCHANGE, top_k=settings.retrieval_top_k,
                           how=settings.search())
    assert (ans.reason, ans.handoff, ans.failures) == ("extracted", False, [])
    assert ans.text == extractive.answer_in(demo_kb, "demo", EXCHANGE, found)
    assert ans.completion is not None and ans.completion.model == EXTRACTION
    assert ans.spec is None  # no model wrote it, none is charged
    assert api_answers.written_by(ans) == EXTRACTION  # what the OpenAI-compatible reply names
    # the evidence step still refuses what the passages cannot answer, and hands off
    off = assistant.answer(rt, sessions, "vcs consertam geladeira frost free?", [], use)
    assert (off.reason, off.handoff) == ("no_passages", True)
    assert api_answers.written_by(off) == api_answers.NO_MODEL
    # saying again what the conversation already said would loop: a human takes over
    said: list[ChatMessage] = [{"role": "user", "content": EXCHANGE},
                               {"role": "assistant", "content": ans.text}]
    again = assistant.answer(rt, sessions, EXCHANGE, said, use)
    assert (again.reason, again.handoff) == ("guard_repeat", True)
    # a stream gets the same reply, with no model to stream from
    p = assistant.prepare(rt, sessions, EXCHANGE, [], use)
    assert isinstance(p, assistant.Answer) and p.text == ans.text
    # the mode is the knowledge base's own: another still asks the model
    other = assistant.use_for(settings, collection="outra")
    assert answer_modes.mode_of(sessions, "outra") == answer_modes.DEFAULT
    assert assistant.answer(rt, sessions, EXCHANGE, [], other).reason != "extracted"


def test_in_model_checked_mode_the_model_decides_and_a_passage_unit_answers(
        sessions: sessionmaker[Session], tmp_path: Path, demo_kb,  # type: ignore[no-untyped-def]
        fake: FakeOpenAI) -> None:
    from server.runtime import Runtime
    from server.services import api_answers, assistant
    from server.settings import Settings

    spec = ModelSpec(name="gpt", provider="openai", base_url=fake.url, model="gpt-fake",
                     api_key="sk-test-secret-1234")
    settings = Settings(data_dir=tmp_path, kb_collection="demo", models=[spec],
                        llm_default="gpt", llm_fallback=[])
    rt = Runtime(settings, {"gpt": (spec, registry.create(spec))}, demo_kb, httpx.Client())
    use = assistant.use_for(settings)
    answer_modes.record(sessions, "demo", gate.ModeChoice(CHECKED, MODEL_EXTRACTION, "medido",
                                                          {}), version="negocios-v7",
                        measured={"set": "demo"})
    found = demo_kb.search("demo", EXCHANGE, top_k=settings.retrieval_top_k,
                           how=settings.search())
    quoted = extractive.answer_in(demo_kb, "demo", EXCHANGE, found)
    fake.script = [("ok", USELESS)]
    ans = assistant.answer(rt, sessions, EXCHANGE, [], use)
    # the model answered, so the best passage unit goes; its own words never do
    assert (ans.reason, ans.handoff, ans.text) == ("checked", False, quoted)
    assert quoted is not None and USELESS not in quoted
    assert len(fake.requests) == 1
    assert ans.spec is not None and ans.spec.name == "gpt"  # its tokens are charged to it
    # the model's refusal stands: a human takes over and nothing is quoted
    fake.script = [("ok", spec.refusal)]
    off = assistant.answer(rt, sessions, EXCHANGE, [], use)
    assert (off.reason, off.handoff, off.text) == ("refused", True, spec.refusal)
    # too little evidence refuses before any model is asked
    asked = len(fake.requests)
    none = assistant.answer(rt, sessions, "vcs consertam geladeira frost free?", [], use)
    assert (none.reason, none.handoff) == ("no_passages", True)
    assert len(fake.requests) == asked
    # quoting what the conversation already said would loop: a human takes over
    said: list[ChatMessage] = [{"role": "user", "content": EXCHANGE},
                               {"role": "assistant", "content": quoted}]
    fake.script = [("ok", USELESS)]
    again = assistant.answer(rt, sessions, EXCHANGE, said, use)
    assert (again.reason, again.handoff) == ("guard_repeat", True)
    # a stream gets the same quoted unit, whole, once the model has decided
    fake.script = [("ok", USELESS)]
    p = assistant.prepare(rt, sessions, EXCHANGE, [], use)
    assert isinstance(p, assistant.Prepared) and p.mode == CHECKED
    pieces = list(api_answers.stream(rt, sessions, p))
    assert "".join(x.text for x in pieces if x.text) == quoted
    assert pieces[-1].finish == "stop" and len(fake.requests) == asked + 2


def test_model_checked_asks_a_local_version_for_one_token_and_a_remote_model_for_its_reply(
        sessions: sessionmaker[Session], tmp_path: Path, llm, demo_kb,  # type: ignore[no-untyped-def]
        fake: FakeOpenAI) -> None:
    """A local version refuses at its first token, so that token is the whole decision; a
    remote model's refusal is its words, so it is asked for the reply (never sent)."""
    from server.runtime import Runtime
    from server.services import assistant
    from server.settings import Settings

    remote = ModelSpec(name="gpt", provider="openai", base_url=fake.url, model="gpt-fake",
                       api_key="sk-test-secret-1234")
    settings = Settings(data_dir=tmp_path, kb_collection="demo", models=[remote],
                        llm_default="gpt", llm_fallback=[])
    use = assistant.use_for(settings)
    assert answer_modes.mode_of(sessions, "demo") == CHECKED  # the shipped default
    rt = Runtime(settings, {"gpt": (remote, registry.create(remote))}, demo_kb, httpx.Client())
    fake.script = [("ok", USELESS)]
    assert assistant.answer(rt, sessions, EXCHANGE, [], use).reason == "checked"
    assert fake.requests[-1]["max_tokens"] == use.max_tokens

    local = Settings(data_dir=tmp_path, kb_collection="demo")
    version = local.local_model().model_copy(update={"path": llm.path,
                                                     "refusal_threshold": 0.99})
    rt = Runtime(local, {"local": (version, llm)}, demo_kb, httpx.Client())
    saved, llm.refusal_threshold = llm.refusal_threshold, 0.99  # as the version loads it
    try:
        ans = assistant.answer(rt, sessions, EXCHANGE, [], assistant.use_for(local))
    finally:
        llm.refusal_threshold = saved
    assert ans.reason == "checked" and ans.completion is not None
    assert ans.completion.completion_tokens == 1


SHOP = {"loja.md": """# Loja Sol

## Pagamentos

Aceitamos Pix, boleto e cartões Visa e Elo. O boleto vence em 3 dias úteis.

## Entregas

Entregamos em todo o estado de Minas Gerais em até 5 dias úteis. O frete é grátis acima de
R$ 200,00.
"""}
CASES = [
    {"id": "s1", "question": "o boleto vence em qtos dias?", "answers": ["3 dias úteis"],
     "sources": [{"doc": "docs/loja.md", "text": "O boleto vence em 3 dias úteis."}]},
    {"id": "s2", "question": "em qnto tempo chega a entrega?", "answers": ["5 dias úteis"],
     "sources": [{"doc": "docs/loja.md",
                  "text": "Entregamos em todo o estado de Minas Gerais em até 5 dias úteis."}]},
    {"id": "s3", "question": "frete gratis a partir de quanto?", "answers": ["R$ 200,00"],
     "sources": [{"doc": "docs/loja.md", "text": "O frete é grátis acima de"}]},
    {"id": "s4", "question": "vcs parcelam no crediario?", "answers": [], "sources": [],
     "kind": "out_of_scope"},
]


def test_models_compare_lists_extraction_keeps_the_choice_and_shows_why(tmp_path: Path) -> None:
    shop = tmp_path / "loja-sol"
    (shop / "docs").mkdir(parents=True)
    for name, text in SHOP.items():
        (shop / "docs" / name).write_text(text, encoding="utf-8")
    (shop / "qa.jsonl").write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in CASES))
    data = tmp_path / "data"
    env = server_env(data, COLUMNS="250")
    out = subprocess.run([*ATENDE, "models", "compare", "extraction", "--set", str(shop),
                          "--collection", "loja-sol", "--json", str(tmp_path / "gate.json")],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert out.returncode in (0, 1), out.stderr
    result = json.loads((tmp_path / "gate.json").read_text())
    assert [s["method"] for s in result["summary"]] == \
        ["extractive", EXTRACTION, "serving", "serving:model", f"serving:{CHECKED}"]
    choice = result["answer_mode"]
    assert choice["current"] == answer_modes.DEFAULT and choice["mode"] in MODES
    assert set(choice["verdicts"]) == set(MODES) - {answer_modes.DEFAULT}
    assert {d["metric"] for d in choice["verdicts"][EXTRACTION]["deltas"]} >= \
        {"containment", "wrongly_refused", "unanswerable_refused", "out_of_scope_ok"}
    # passed exactly where extraction was chosen; the reason is in the report
    assert out.returncode == (0 if choice["mode"] == EXTRACTION else 1)
    assert choice["reason"].startswith(f"{choice['mode']} replaces" if choice["mode"] !=
                                       answer_modes.DEFAULT else f"{choice['mode']} kept")
    assert " ".join(choice["reason"].split()[:2]) in " ".join(out.stdout.split())

    # the CLI shows the mode kept for the knowledge base, with its reason
    shown = subprocess.run([*ATENDE, "models", "mode", "--collection", "loja-sol", "--json",
                            str(tmp_path / "mode.json")], capture_output=True, text=True,
                           cwd=ROOT, env=env, timeout=120)
    assert shown.returncode == 0, shown.stderr
    [mode] = json.loads((tmp_path / "mode.json").read_text())
    assert (mode["mode"], mode["reason"], mode["chosen_by"], mode["version"]) == \
        (choice["mode"], choice["reason"], "gate", DEFAULT_ADAPTER.name)
    assert mode["gate"]["summary"][EXTRACTION]["answerable"] == 3

    # and so does the API, beside the knowledge bases no gate has judged (the default, said so)
    from server.app import create_app
    from server.settings import Settings, get_settings, use_settings

    saved = get_settings()
    try:
        client = TestClient(create_app(use_settings(Settings(
            data_dir=data, admin_token="test-admin-token"))))
        got = client.get("/api/kb/loja-sol/answer-mode", headers=ADMIN).json()
        listed = client.get("/api/models/answer-modes", headers=ADMIN).json()
    finally:
        use_settings(saved)
    assert (got["mode"], got["reason"]) == (choice["mode"], choice["reason"])
    assert {m["collection"]: m["chosen_by"] for m in listed} == {"loja-sol": "gate",
                                                                 "default": "default"}
    assert next(m for m in listed if m["collection"] == "default")["reason"] == \
        answer_modes.DEFAULT_REASON


def test_curated_chat_pairs_are_judged_as_an_eval_set(tmp_path: Path, e5) -> None:  # type: ignore[no-untyped-def]
    from eval.pairs import TARGET, write
    from finetune.curate import Pair
    from rag.edge import EdgeClient
    from rag.index import KnowledgeBase

    boleto = "O boleto vence em 3 dias úteis após a finalização do pedido."
    frete = "O frete é grátis para compras acima de R$ 299,00 em todo o Brasil."
    pairs = [Pair("o boleto vence qdo?", "Olá! Ele vence em 3 dias úteis após o pedido.", "chat",
                  "c1", [boleto, frete], ["pagamentos.pdf", "entregas.md"]),
             Pair("frete gratis a partir de qto?", "Acima de R$ 299,00 o frete sai grátis.",
                  "chat", "c2", [frete], ["entregas.md"])]
    es = write(pairs, tmp_path / "pares")
    assert sorted(p.name for p in es.docs) == ["entregas.md", "pagamentos.pdf.md"]
    assert [(c.kind, c.answers) for c in es.cases] == [("in_scope", [p.answer]) for p in pairs]
    assert es.answering_docs(es.cases[1]) == ["entregas.md"]
    kb = KnowledgeBase(EdgeClient(str(tmp_path / "q")), e5)
    for path in es.docs:
        kb.ingest("pares", path.name, path.read_text())
    outcomes = answers.run(es, kb, "pares", {EXTRACTION: answers.extraction_method(
        kb, "pares", Floors(0.0, 0.0))}, top_k=2)
    assert [o.kind for o in outcomes] == ["in_scope", "unanswerable"] * 2
    assert TARGET == "f1" and all(o.f1 > 0.3 for o in outcomes if o.kind == "in_scope")


def test_in_model_mode_an_unfit_reply_hands_off_instead_of_quoting(
        sessions: sessionmaker[Session], tmp_path: Path, fake: FakeOpenAI, demo_kb) -> None:  # type: ignore[no-untyped-def]
    from server.runtime import Runtime
    from server.services import assistant
    from server.settings import Settings

    spec = ModelSpec(name="gpt", provider="openai", base_url=fake.url, model="gpt-fake",
                     api_key="sk-test-secret-1234", max_retries=0)
    settings = Settings(data_dir=tmp_path, kb_collection="demo", models=[spec],
                        llm_default="gpt", llm_fallback=[])
    rt = Runtime(settings, {"gpt": (spec, registry.create(spec))}, demo_kb, httpx.Client())
    use = assistant.use_for(settings)
    invented = "A troca custa R$ 999,00."  # a price no passage holds: the guard refuses it
    fake.script = [("ok", invented)] * 2
    answer_modes.record(sessions, "demo", gate.ModeChoice(MODEL_EXTRACTION, CHECKED, "why", {}),
                        version="faquad-v5", measured={})
    quoted = assistant.answer(rt, sessions, EXCHANGE, [], use)  # model+extraction: a quote
    assert (quoted.reason, quoted.handoff) == ("guard_ungrounded_number", False)
    answer_modes.record(sessions, "demo", gate.ModeChoice(MODEL, MODEL_EXTRACTION, "why", {}),
                        version="faquad-v5", measured={})
    off = assistant.answer(rt, sessions, EXCHANGE, [], use)
    assert (off.reason, off.handoff, off.text) == ("unfit_ungrounded_number", True,
                                                   assistant.NO_ANSWER)
    assert assistant.handoff_text(off.reason, "Um atendente já vem.") == \
        f"{assistant.NOT_FOUND} Um atendente já vem."
    assert len(fake.requests) == 2
