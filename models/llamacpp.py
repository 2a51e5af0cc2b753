"""Provider ``llamacpp``: a GGUF model in process through llama-cpp-python, CPU or CUDA.

One llama.cpp context cannot serve two completions at once, so calls are serialized by a lock;
the caller runs them off the event loop. llama.cpp keeps the KV cache of the previous prompt and
evaluates only what differs, so a stable prefix (persona, passages) is reused across turns.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from models import chat_template
from models.base import ChatMessage, Completion, ModelConfigError, ModelError


class LlamaCppProvider:
    """A local GGUF model behind the Provider interface."""

    def __init__(
        self,
        model_path: Path,
        *,
        setting: str = "ATENDE_LLM_MODEL_PATH",
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        name: str | None = None,
    ) -> None:
        self.path = Path(model_path)
        self.name = name or self.path.stem
        if not self.path.is_file():
            raise ModelConfigError(f"{setting}: model file {self.path} does not exist")
        if not os.access(self.path, os.R_OK):
            raise ModelConfigError(f"{setting}: model file {self.path} is not readable")
        with self.path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise ModelConfigError(f"{setting}: {self.path} is not a GGUF model file")
        from llama_cpp import Llama  # imported here: loading the shared library takes a moment

        try:
            self._llm = Llama(
                model_path=str(self.path),
                n_ctx=n_ctx,
                n_threads=n_threads or os.cpu_count(),
                n_gpu_layers=n_gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelConfigError(f"{setting}: cannot load {self.path}: {exc}") from None
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        """Tokens of a text under this model's tokenizer."""
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=True))

    def _args(self, messages: list[ChatMessage], max_tokens: int, temperature: float) -> dict:
        prompt = chat_template.render(messages)
        tokens = self._llm.tokenize(prompt.encode(), add_bos=False, special=True)
        room = self._llm.n_ctx() - max_tokens
        if len(tokens) > room:
            raise ModelError(f"prompt of {len(tokens)} tokens does not fit the context ({room})")
        return {"prompt": tokens, "max_tokens": max_tokens, "temperature": temperature,
                "stop": chat_template.STOP}

    def complete(
        self, messages: list[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Completion:
        """One reply; the model lock makes concurrent callers wait their turn."""
        args = self._args(messages, max_tokens, temperature)
        with self._lock:
            try:
                out: Any = self._llm.create_completion(**args)
            except (ValueError, RuntimeError) as exc:
                raise ModelError(f"llama.cpp failed: {exc}") from exc
        choice = out["choices"][0]
        usage = out["usage"]
        return Completion(
            text=choice["text"].strip(),
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            model=self.name,
        )

    def stream(
        self, messages: list[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Iterator[str]:
        """The reply piece by piece; holds the model lock until the stream ends."""
        args = self._args(messages, max_tokens, temperature)
        with self._lock:
            for chunk in self._llm.create_completion(**args, stream=True):
                piece = chunk["choices"][0]["text"]  # type: ignore[index]
                if piece:
                    yield piece
