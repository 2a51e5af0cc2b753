"""The llama.cpp provider with the real bundled model, and the chat template."""

from __future__ import annotations

import pytest

from models import chat_template
from models.base import ModelConfigError
from models.providers.llamacpp import LlamaCppProvider


def test_template_puts_system_in_first_user_turn() -> None:
    text = chat_template.render([
        {"role": "system", "content": "Seja breve."},
        {"role": "user", "content": "oi"},
        {"role": "assistant", "content": "Olá!"},
        {"role": "user", "content": "tudo bem?"},
    ])
    assert text == ("<bos><start_of_turn>user\nSeja breve.\n\noi<end_of_turn>\n"
                    "<start_of_turn>model\nOlá!<end_of_turn>\n"
                    "<start_of_turn>user\ntudo bem?<end_of_turn>\n<start_of_turn>model\n")


def test_completion_reports_tokens(llm) -> None:
    done = llm.complete([{"role": "user", "content": "Qual é a capital do Brasil?"}],
                        max_tokens=8, temperature=0.0)
    assert done.prompt_tokens > 5 and 0 < done.completion_tokens <= 8
    assert done.finish_reason in {"stop", "length"}
    streamed = "".join(llm.stream([{"role": "user", "content": "Qual é a capital do Brasil?"}],
                                  max_tokens=8, temperature=0.0))
    assert streamed.strip() == done.text


def test_counts_tokens_with_the_models_tokenizer(llm) -> None:
    assert llm.count_tokens("olá") < llm.count_tokens("olá, tudo bem com você hoje?")


def test_prompt_over_the_context_is_refused(llm) -> None:
    from models.base import ModelError

    with pytest.raises(ModelError, match="does not fit"):
        llm.complete([{"role": "user", "content": "palavra " * 5000}], max_tokens=8,
                     temperature=0.0)


def test_bad_model_files_name_the_setting(tmp_path) -> None:
    with pytest.raises(ModelConfigError, match="ATENDE_LLM_MODEL_PATH.*does not exist"):
        LlamaCppProvider(tmp_path / "missing.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelConfigError, match="ATENDE_LLM_MODEL_PATH.*cannot load"):
        LlamaCppProvider(junk)


def test_timeout_stops_generation(llm) -> None:
    from models.base import ModelTimeout

    slow = LlamaCppProvider(llm.path, n_ctx=512, timeout_s=0.001)
    with pytest.raises(ModelTimeout, match="no reply within"):
        slow.complete([{"role": "user", "content": "Conte uma história longa."}],
                      max_tokens=200, temperature=0.0)


def test_history_is_trimmed_to_its_token_budget(llm) -> None:
    from rag import prompt
    from rag.index import Passage

    history = []
    for i in range(40):
        history.append({"role": "user", "content": f"pergunta número {i} sobre o pedido"})
        history.append({"role": "assistant", "content": f"resposta número {i} sobre o pedido"})
    passage = Passage("p1", "doc.md", "Prazo", 0, "Trocas em 30 dias.", 1.0)
    msgs = prompt.build("Persona.", [passage], "e agora?", history,
                        count_tokens=llm.count_tokens, history_budget=60)
    kept = msgs[1:-1]
    assert sum(llm.count_tokens(m["content"]) for m in kept) <= 60
    assert kept and kept[-1]["content"] == "resposta número 39 sobre o pedido"  # newest kept
    assert kept[0]["role"] == "user" and msgs[-1] == {"role": "user", "content": "e agora?"}


def test_models_list_shows_state(tmp_path) -> None:
    import json
    import subprocess

    from tests.conftest import ATENDE, ROOT, server_env
    from tests.fake_openai import FakeOpenAI

    fake = FakeOpenAI()
    models = [{"name": "gpt", "provider": "openai", "base_url": fake.url, "model": "gpt-fake",
               "api_key": "sk-test-secret-1234", "price_in_per_1k": 0.15},
              {"name": "badkey", "provider": "openai", "base_url": fake.url, "model": "x",
               "api_key": "sk-wrong-key-999"}]
    env = server_env(tmp_path, ATENDE_MODELS=json.dumps(models), ATENDE_LLM_FALLBACK='["gpt"]')
    out = subprocess.run([*ATENDE, "models", "list", "--json", str(tmp_path / "m.json")],
                         env={**env, "COLUMNS": "250"}, cwd=ROOT, capture_output=True, text=True)
    fake.close()
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads((tmp_path / "m.json").read_text())}
    assert rows["local"]["state"] == "loads" and rows["local"]["role"] == "default"
    assert rows["gpt"]["state"] == "ready" and rows["gpt"]["role"] == "fallback 1"
    assert rows["badkey"]["state"] == "refused: check the API key"
    assert "sk-test-secret-1234" not in out.stdout + (tmp_path / "m.json").read_text()


def test_refusal_gate_follows_the_threshold(llm) -> None:
    from models.spec import REFUSAL

    msgs = [{"role": "system", "content": "Trechos:\n[1] O frete é grátis acima de R$ 299."},
            {"role": "user", "content": "qual a cor do céu?"}]
    p = llm.refusal_probability(msgs)
    assert 0.0 <= p < 1.0
    always = LlamaCppProvider(llm.path, n_ctx=2048, refusal_threshold=0.0)
    out = always.complete(msgs, max_tokens=24, temperature=0.0)
    assert out.text == REFUSAL and out.completion_tokens <= 1  # decided at the first token
    assert "".join(always.stream(msgs, max_tokens=24, temperature=0.0)) == REFUSAL
    never = LlamaCppProvider(llm.path, n_ctx=2048, refusal_threshold=1.01)
    text = never.complete(msgs, max_tokens=24, temperature=0.0).text
    assert text != REFUSAL and not text.startswith("Des")  # the refusal is forbidden


def test_a_broken_adapter_names_the_setting(llm, tmp_path) -> None:
    bad = tmp_path / "adapter.gguf"
    bad.write_bytes(b"not a gguf")
    with pytest.raises(ModelConfigError, match="is not a GGUF"):
        LlamaCppProvider(llm.path, lora_path=bad)


def test_llama_cpp_load_notes_go_to_logging_not_stderr(llm) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    load = ("import logging, sys; from pathlib import Path; "
            "from models.providers.llamacpp import LlamaCppProvider; "
            "logging.basicConfig(level=sys.argv[1], stream=sys.stdout); "
            f"LlamaCppProvider(Path({str(llm.path)!r}), n_ctx=2048)")
    quiet, debug = (subprocess.run([sys.executable, "-c", load, level], capture_output=True,
                                   text=True, timeout=120) for level in ("INFO", "DEBUG"))
    assert quiet.returncode == 0 and "llama_" not in quiet.stderr + quiet.stdout
    assert "atende.llamacpp" in debug.stdout and "llama_" not in debug.stderr
