"""What a version and the model's own reply are served: the answer units the version was trained
on (``focus_units`` → ``ModelSpec.prompt_units``), and "Sim, "/"Não, " on a model's reply where
it decides a yes/no question, in serving and in eval alike."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from eval.answers import MODEL_EXTRACTION
from models import registry
from models.spec import ModelSpec
from rag import extractive, units
from server.services import model_versions as mv
from tests.conftest import serve_mode
from tests.fake_openai import FakeOpenAI

LIST_QUESTION = "o que a troca precisa ter pra ser aceita?"
LEAD_IN = "Para que a troca ou devolução seja aceita, o produto precisa:"
ELO = "Aceitamos cartões Visa, Mastercard, Elo, American Express e Hipercard."
CARRIER = "Não é possível escolher a transportadora na hora da compra."
PIX = "O Pix tem 5% de desconto sobre o valor dos produtos."


def test_the_spec_knows_the_layouts_the_units_have() -> None:
    # models uses none of our packages, so ModelSpec spells rag.units.LAYOUTS out
    field = ModelSpec.model_fields["prompt_units"]
    assert typing.get_args(field.annotation) == units.LAYOUTS
    assert field.default == units.SENTENCES
    with pytest.raises(ValueError):
        ModelSpec(name="x", provider="openai", prompt_units="paragraphs")  # type: ignore[arg-type]


def _first_item(sessions: sessionmaker[Session], tmp_path: Path, llm, demo_kb,  # type: ignore[no-untyped-def]
                name: str, config: dict) -> tuple[ModelSpec, str]:
    """The version's spec, and the first item serving shows it for ``LIST_QUESTION``."""
    from server.runtime import Runtime
    from server.services import assistant
    from server.settings import Settings

    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF")
    settings = Settings(data_dir=tmp_path, kb_collection="demo", retrieval_top_k=2)
    local = settings.local_model().model_copy(update={"path": llm.path})
    spec = mv.spec_for(mv.register(sessions, name, base=base, adapter=None, config=config), local)
    rt = Runtime(settings, {"local": (spec, llm)}, demo_kb, httpx.Client())
    p = assistant.prepare(rt, sessions, LIST_QUESTION, [], assistant.use_for(settings))
    assert isinstance(p, assistant.Prepared)
    return spec, p.messages[0]["content"].split("Trechos:\n", 1)[1].split("\n\n")[0]


def test_a_version_is_served_the_units_it_was_trained_on(
        sessions: sessionmaker[Session], tmp_path: Path, llm, demo_kb) -> None:  # type: ignore[no-untyped-def]
    focused = {"sentences": 3, "passages": 2, "focus_terms": 0.15}
    old, old_item = _first_item(sessions, tmp_path, llm, demo_kb, "v5", focused)
    new, new_item = _first_item(sessions, tmp_path, llm, demo_kb, "v6",
                                {**focused, "focus_units": units.STRUCTURED})
    # trained before the key (faquad-v4, faquad-v5): sentences, the list's lead-in alone
    assert old.prompt_units == units.SENTENCES and old_item.endswith(LEAD_IN)
    # trained on structured units: a list item with its lead-in
    assert new.prompt_units == units.STRUCTURED
    assert LEAD_IN in new_item and not new_item.endswith(LEAD_IN)


def test_a_version_whose_units_are_unknown_is_refused(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF")
    v = mv.register(sessions, "odd", base=base, adapter=None, config={"focus_units": "words"})
    with pytest.raises(ValueError, match="focus_units 'words'"):
        mv.spec_for(v, ModelSpec(name="local", provider="llamacpp", path=base))


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()


def _remote(fake: FakeOpenAI) -> ModelSpec:
    return ModelSpec(name="gpt", provider="openai", base_url=fake.url, model="gpt-fake",
                     api_key="sk-test-secret-1234", max_retries=0)


ASKED = [("vcs aceitam elo?", ELO, "Sim, aceitamos cartões Visa"),
         ("posso escolher a transportadora?", CARRIER, "Não, não é possível escolher"),
         ("vcs aceitam elo?", PIX, PIX)]  # the reply does not decide it: as it was


def test_serving_opens_a_model_reply_that_decides_a_yes_no_question_with_sim_or_nao(
        sessions: sessionmaker[Session], tmp_path: Path, fake: FakeOpenAI, demo_kb) -> None:  # type: ignore[no-untyped-def]
    from server.runtime import Runtime
    from server.services import assistant
    from server.settings import Settings

    spec = _remote(fake)
    settings = Settings(data_dir=tmp_path, kb_collection="demo", models=[spec],
                        llm_default="gpt", llm_fallback=[])
    rt = Runtime(settings, {"gpt": (spec, registry.create(spec))}, demo_kb, httpx.Client())
    serve_mode(sessions, "demo", MODEL_EXTRACTION)  # a mode that sends the model's words
    fake.script = [("ok", reply) for _, reply, _ in ASKED]
    for question, _, sent in ASKED:
        ans = assistant.answer(rt, sessions, question, [], assistant.use_for(settings))
        assert (ans.reason, ans.handoff) == ("answered", False), ans
        assert ans.text.startswith(sent)
    assert len(fake.requests) == len(ASKED)  # every reply the model's own, none the fallback's


def test_eval_asks_and_scores_the_model_reply_as_serving_sends_it(fake: FakeOpenAI,
                                                                  demo_kb) -> None:  # type: ignore[no-untyped-def]
    from eval.answers import model_method

    method = model_method(registry.create(_remote(fake)), demo_kb, "demo")
    fake.script = [("ok", reply) for _, reply, _ in ASKED]
    for question, _, sent in ASKED:
        text, guarded = method(question, demo_kb.search("demo", question, top_k=4))
        assert guarded == "" and text.startswith(sent)


def test_eval_shows_a_model_the_units_of_its_layout(fake: FakeOpenAI, demo_kb) -> None:  # type: ignore[no-untyped-def]
    from eval.answers import model_method

    found = demo_kb.search("demo", LIST_QUESTION, top_k=2)
    for layout in units.LAYOUTS:
        model_method(registry.create(_remote(fake)), demo_kb, "demo", sentences=3,
                     layout=layout)(LIST_QUESTION, found)
    shown = [r["messages"][0]["content"].split("Trechos:\n", 1)[1].split("\n\n")[0]
             for r in fake.requests]
    assert [s.endswith(LEAD_IN) for s in shown] == [True, False]
    assert shown[1].split("\n", 1)[1] == extractive.focus(
        demo_kb.embedder, LIST_QUESTION, found, 3, layout=units.STRUCTURED)[0].text
