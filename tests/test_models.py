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
