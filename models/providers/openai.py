"""Provider ``openai``: OpenAI, or any OpenAI-compatible server (vLLM, llama.cpp, Ollama).

The official client retries 408, 409, 429 and 5xx with backoff and honours Retry-After. Errors
are reported by status and type only: response bodies may echo a (masked) key.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import openai

from models.base import ChatMessage, Completion, ModelConfigError, ModelError, ModelTimeout
from models.spec import ModelSpec


def create(spec: ModelSpec) -> OpenAIProvider:
    if not spec.model:
        raise ModelConfigError(f"model {spec.name!r}: openai needs `model` (the server's name)")
    return OpenAIProvider(spec)


def _error(exc: Exception) -> ModelError:
    if isinstance(exc, openai.APITimeoutError):
        return ModelTimeout("no reply within the timeout")
    if isinstance(exc, openai.APIStatusError):
        hint = {401: " (check the API key)", 404: " (check the model name and base URL)",
                429: " (rate limited or out of quota)"}.get(exc.status_code, "")
        return ModelError(f"server answered {exc.status_code}{hint}")
    if isinstance(exc, openai.APIConnectionError):
        return ModelError("server unreachable")
    return ModelError(f"malformed response ({type(exc).__name__})")


class OpenAIProvider:
    """A remote chat-completions model behind the Provider interface."""

    def __init__(self, spec: ModelSpec) -> None:
        self.name = spec.name
        self.spec = spec
        key = spec.api_key.get_secret_value() if spec.api_key else "not-needed"
        self.client = openai.OpenAI(base_url=spec.base_url, api_key=key, timeout=spec.timeout_s,
                                    max_retries=spec.max_retries)

    def close(self) -> None:
        """Nothing to free here: the model runs on its server."""

    def count_tokens(self, text: str) -> int:
        """An estimate (the remote tokenizer is not at hand): about 3.5 characters a token."""
        return max(1, round(len(text) / 3.5))

    def complete(
        self, messages: list[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Completion:
        try:
            resp: Any = self.client.chat.completions.create(
                model=self.spec.model or "", messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens, temperature=temperature)
            choice = resp.choices[0]
            text = choice.message.content
            if not isinstance(text, str):
                raise TypeError("no message content")
        except (openai.OpenAIError, ValueError, TypeError, IndexError, AttributeError) as exc:
            raise _error(exc) from None
        usage = resp.usage
        prompt = usage.prompt_tokens if usage else sum(
            self.count_tokens(m["content"]) for m in messages)
        completion = usage.completion_tokens if usage else self.count_tokens(text)
        return Completion(text=text.strip(), finish_reason=choice.finish_reason or "stop",
                          prompt_tokens=prompt, completion_tokens=completion, model=self.name)

    def stream(
        self, messages: list[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Generator[str, None, None]:
        try:
            chunks: Any = self.client.chat.completions.create(
                model=self.spec.model or "", messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens, temperature=temperature, stream=True)
            with chunks:  # closed with this generator: the API stops writing (and billing)
                for chunk in chunks:
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content
        except (openai.OpenAIError, ValueError, TypeError, AttributeError) as exc:
            raise _error(exc) from None
