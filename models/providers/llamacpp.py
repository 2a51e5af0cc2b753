"""Provider ``llamacpp``: a GGUF model in process through llama-cpp-python, CPU or CUDA.

One llama.cpp context cannot serve two completions at once, so calls are serialized by a lock;
callers run them off the event loop. llama.cpp keeps the KV cache of the previous prompt and
evaluates only the tokens after the longest shared prefix, so a stable prefix (persona, passages)
is reused across turns; ``reuse_prefix=False`` turns that off (for measuring it).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llama_cpp import StoppingCriteriaList

from models import chat_template
from models.base import ChatMessage, Completion, ModelConfigError, ModelError, ModelTimeout
from models.spec import ModelSpec


def create(spec: ModelSpec) -> LlamaCppProvider:
    if spec.path is None:
        raise ModelConfigError(f"model {spec.name!r}: llamacpp needs a GGUF path")
    setting = ("ATENDE_LLM_MODEL_PATH" if spec.name == "local"
               else f"ATENDE_MODELS ({spec.name}.path)")
    return LlamaCppProvider(spec.path, setting=setting, n_ctx=spec.context,
                            n_threads=spec.threads, n_gpu_layers=spec.gpu_layers, name=spec.name,
                            timeout_s=spec.timeout_s)


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
        timeout_s: float = 120.0,
        reuse_prefix: bool = True,
    ) -> None:
        self.path = Path(model_path)
        self.name = name or self.path.stem
        self.timeout_s = timeout_s
        self.reuse_prefix = reuse_prefix
        if not self.path.is_file():
            raise ModelConfigError(f"{setting}: model file {self.path} does not exist")
        if not os.access(self.path, os.R_OK):
            raise ModelConfigError(f"{setting}: model file {self.path} is not readable")
        with self.path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise ModelConfigError(f"{setting}: {self.path} is not a GGUF model file")
        from llama_cpp import Llama

        try:
            self.llama = Llama(model_path=str(self.path), n_ctx=n_ctx,
                               n_threads=n_threads or os.cpu_count(), n_gpu_layers=n_gpu_layers,
                               verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ModelConfigError(f"{setting}: cannot load {self.path}: {exc}") from None
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        """Tokens of a text under this model's tokenizer."""
        return len(self.llama.tokenize(text.encode(), add_bos=False, special=True))

    def _args(self, messages: list[ChatMessage], max_tokens: int, temperature: float,
              deadline: float) -> dict[str, Any]:
        prompt = chat_template.render(messages)
        tokens = self.llama.tokenize(prompt.encode(), add_bos=False, special=True)
        room = self.llama.n_ctx() - max_tokens
        if len(tokens) > room:
            raise ModelError(f"prompt of {len(tokens)} tokens does not fit the context ({room})")
        return {"prompt": tokens, "max_tokens": max_tokens, "temperature": temperature,
                "stop": chat_template.STOP,
                "stopping_criteria": StoppingCriteriaList(
                    [lambda _ids, _logits: time.monotonic() > deadline])}

    def _start(self) -> None:
        if not self.reuse_prefix:
            self.llama.reset()  # forget the KV cache: every prompt is evaluated whole

    def complete(
        self, messages: list[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Completion:
        """One reply; the model lock makes concurrent callers wait their turn."""
        with self._lock:
            deadline = time.monotonic() + self.timeout_s
            args = self._args(messages, max_tokens, temperature, deadline)
            self._start()
            try:
                out: Any = self.llama.create_completion(**args)
            except (ValueError, RuntimeError) as exc:
                raise ModelError(f"llama.cpp failed: {exc}") from exc
        if time.monotonic() > deadline:
            raise ModelTimeout(f"no reply within {self.timeout_s:g} s")
        choice, usage = out["choices"][0], out["usage"]
        return Completion(text=choice["text"].strip(),
                          finish_reason=choice.get("finish_reason") or "stop",
                          prompt_tokens=usage["prompt_tokens"],
                          completion_tokens=usage["completion_tokens"], model=self.name)

    def stream(
        self, messages: list[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Iterator[str]:
        """The reply piece by piece; holds the model lock until the stream ends."""
        with self._lock:
            args = self._args(messages, max_tokens, temperature,
                              time.monotonic() + self.timeout_s)
            self._start()
            for chunk in self.llama.create_completion(**args, stream=True):
                piece = chunk["choices"][0]["text"]  # type: ignore[index]
                if piece:
                    yield piece
