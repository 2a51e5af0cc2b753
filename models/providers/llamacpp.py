"""Provider ``llamacpp``: a GGUF model in process through llama-cpp-python, CPU or CUDA.

One llama.cpp context cannot serve two completions at once, so calls are serialized by a lock;
callers run them off the event loop. llama.cpp keeps the KV cache of the previous prompt and
evaluates only the tokens after the longest shared prefix, so a stable prefix (persona, passages)
is reused across turns; ``reuse_prefix=False`` turns that off (for measuring it).

A model swapped out (a promotion or rollback) is closed: its memory is freed as soon as no call
is using it. llama-cpp-python's objects hold reference cycles (the context and its model, a LoRA
adapter's free callback, the last sampler and our logits processor), so dropping the last
reference frees nothing until the garbage collector runs: every swap kept about 340 MB more.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, cast

import llama_cpp
import numpy as np
from llama_cpp import LogitsProcessorList, StoppingCriteriaList

from models import chat_template
from models.base import ChatMessage, Completion, ModelConfigError, ModelError, ModelTimeout
from models.spec import REFUSAL, ModelSpec

log = logging.getLogger("atende.llamacpp")
# ggml's levels (NONE, DEBUG, INFO, WARN, ERROR, CONT). llama-cpp-python 0.3.36 maps the older
# enum, so with verbose=False it still prints every WARN, about 100 lines of buffer fallbacks
# per adapter load. Load-time warnings are performance notes: DEBUG here; errors stay errors.
_ERROR, _CONT = 4, 5
_last = [logging.DEBUG]  # a CONT line's level; shared by threads, at worst a line's level is off


@llama_cpp.llama_log_callback
def _forward_log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    if level != _CONT:  # a CONT line continues the previous one at its level
        _last[0] = logging.ERROR if level == _ERROR else logging.DEBUG
    line = text.decode("utf-8", "replace").rstrip()
    if line:
        log.log(_last[0], "%s", line)


llama_cpp.llama_log_set(_forward_log, ctypes.c_void_p(0))


def create(spec: ModelSpec) -> LlamaCppProvider:
    if spec.path is None:
        raise ModelConfigError(f"model {spec.name!r}: llamacpp needs a GGUF path")
    setting = ("ATENDE_LLM_MODEL_PATH" if spec.name == "local"
               else f"ATENDE_MODELS ({spec.name}.path)")
    return LlamaCppProvider(spec.path, setting=setting, n_ctx=spec.context,
                            n_threads=spec.threads, n_gpu_layers=spec.gpu_layers, name=spec.name,
                            timeout_s=spec.timeout_s, lora_path=spec.lora_path,
                            refusal_threshold=spec.refusal_threshold, refusal=spec.refusal)


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
        lora_path: Path | None = None,
        refusal_threshold: float | None = None,
        refusal: str = REFUSAL,
    ) -> None:
        self.path = Path(model_path)
        self.name = name or self.path.stem
        self.timeout_s = timeout_s
        self.reuse_prefix = reuse_prefix
        self.refusal_threshold = refusal_threshold
        self.refusal = refusal
        for file in (self.path, lora_path):
            if file is not None:
                _check_gguf(Path(file), setting)
        self._load_args: dict[str, Any] = {"model_path": str(self.path),
                                           "n_ctx": n_ctx,
                                           "n_threads": n_threads or os.cpu_count(),
                                           "n_gpu_layers": n_gpu_layers,
                                           "lora_path": str(lora_path) if lora_path else None,
                                           "verbose": False}
        self._setting, self._lora_path = setting, lora_path
        self._lock = threading.Lock()  # one completion at a time on the one context
        # What close() needs: the loaded model (None once freed), the calls using it (running,
        # or waiting for the lock), and whether it was closed.
        self._state = threading.Lock()
        self._llama: llama_cpp.Llama | None = self._load()
        self._users = 0
        self._closed = False
        # The refusal's first token: its probability is the model's own "I don't know" score.
        self._refusal_token = self._llama.tokenize(refusal.encode(), add_bos=False)[0]

    def _load(self) -> llama_cpp.Llama:
        try:
            return llama_cpp.Llama(**self._load_args)
        except (ValueError, RuntimeError) as exc:
            lora = self._lora_path
            raise ModelConfigError(f"{self._setting}: cannot load {self.path}"
                                   f"{f' with {lora}' if lora else ''}: {exc}") from None

    @property
    def llama(self) -> llama_cpp.Llama:
        """The loaded model, for measuring it directly (``bench``); the calls below count
        themselves as users instead, so that close() waits for them."""
        if self._llama is None:
            raise ModelError(f"model {self.name} was closed")
        return self._llama

    @contextmanager
    def _using(self) -> Iterator[llama_cpp.Llama]:
        """The model for one call; close() frees it only once no call is using it. A call
        after close() (a turn that took this model before it was swapped out) loads it again
        for its own length, so it still gets its reply from the version it began with."""
        with self._state:
            if self._llama is None:
                log.info("model %s was closed; loading it again for a call that began "
                         "before it was swapped out", self.name)
                self._llama = self._load()
            self._users += 1
            llama = self._llama
        try:
            yield llama
        finally:
            with self._state:
                self._users -= 1
                if self._closed and self._users == 0:
                    self._free()

    def _free(self) -> None:
        """Free the native model, context and adapter now (the caller holds ``_state``)."""
        if self._llama is not None:
            self._llama.close()
            self._llama = None
            _return_heap()

    def close(self) -> None:
        """Free the model's memory: now, or as soon as the calls using it end."""
        with self._state:
            self._closed = True
            if self._users == 0:
                self._free()

    def count_tokens(self, text: str) -> int:
        """Tokens of a text under this model's tokenizer."""
        with self._using() as llama:
            return len(llama.tokenize(text.encode(), add_bos=False, special=True))

    def refusal_probability(self, messages: list[ChatMessage]) -> float:
        """Probability that the reply opens the refusal (for calibrating the threshold)."""
        seen: list[float] = []
        with self._using() as llama, self._lock:
            args, _ = self._args(llama, messages, 1, 0.0, time.monotonic() + self.timeout_s,
                                 probe=seen)
            self._start(llama)
            llama.create_completion(**args)
        return seen[0]

    def _gate(self, seen: list[float], refusing: list[bool]) -> Any:
        """A logits processor: at the first token, refuse when the model's refusal probability
        reaches the threshold (the caller then sends the refusal); else forbid the refusal."""
        def process(_ids: Any, scores: Any) -> Any:
            if seen:
                return scores
            z = scores - scores.max()
            p = float(np.exp(z[self._refusal_token]) / np.exp(z).sum())
            seen.append(p)
            if self.refusal_threshold is not None:
                if p >= self.refusal_threshold:
                    refusing.append(True)
                else:
                    scores[self._refusal_token] = -np.inf
            return scores
        return process

    def _args(self, llama: llama_cpp.Llama, messages: list[ChatMessage], max_tokens: int,
              temperature: float, deadline: float, probe: list[float] | None = None
              ) -> tuple[dict[str, Any], list[bool]]:
        """Completion arguments, and a flag list the refusal gate sets when it refuses."""
        prompt = chat_template.render(messages)
        tokens = llama.tokenize(prompt.encode(), add_bos=False, special=True)
        room = llama.n_ctx() - max_tokens
        if len(tokens) > room:
            raise ModelError(f"prompt of {len(tokens)} tokens does not fit the context ({room})")
        seen: list[float] = [] if probe is None else probe
        refusing: list[bool] = []
        args = {"prompt": tokens, "max_tokens": max_tokens, "temperature": temperature,
                "stop": chat_template.STOP,
                "stopping_criteria": StoppingCriteriaList(
                    [lambda _ids, _logits: time.monotonic() > deadline or bool(refusing)])}
        if self.refusal_threshold is not None or probe is not None:
            args["logits_processor"] = LogitsProcessorList([self._gate(seen, refusing)])
        return args, refusing

    def _start(self, llama: llama_cpp.Llama) -> None:
        if not self.reuse_prefix:
            llama.reset()  # forget the KV cache: every prompt is evaluated whole

    def complete(
        self, messages: list[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Completion:
        """One reply; the model lock makes concurrent callers wait their turn."""
        with self._using() as llama, self._lock:
            deadline = time.monotonic() + self.timeout_s
            args, refused = self._args(llama, messages, max_tokens, temperature, deadline)
            self._start(llama)
            try:
                out: Any = llama.create_completion(**args)
            except (ValueError, RuntimeError) as exc:
                raise ModelError(f"llama.cpp failed: {exc}") from exc
        if time.monotonic() > deadline:
            raise ModelTimeout(f"no reply within {self.timeout_s:g} s")
        choice, usage = out["choices"][0], out["usage"]
        text = self.refusal if refused else choice["text"].strip()
        return Completion(text=text,
                          finish_reason=choice.get("finish_reason") or "stop",
                          prompt_tokens=usage["prompt_tokens"],
                          completion_tokens=usage["completion_tokens"], model=self.name)

    def stream(
        self, messages: list[ChatMessage], *, max_tokens: int, temperature: float
    ) -> Generator[str, None, None]:
        """The reply piece by piece; holds the model lock until the stream ends."""
        with self._using() as llama, self._lock:
            args, refused = self._args(llama, messages, max_tokens, temperature,
                                       time.monotonic() + self.timeout_s)
            self._start(llama)
            # closed with this generator, so a reader who hangs up frees the model at once
            chunks = cast(Generator[Any, None, None], llama.create_completion(**args, stream=True))
            with closing(chunks):
                for chunk in chunks:
                    if refused:
                        yield self.refusal
                        return
                    piece = chunk["choices"][0]["text"]
                    if piece:
                        yield piece


def _return_heap() -> None:
    """Hand the freed heap back to the system. glibc keeps freed pages for reuse, and a model
    freed among other allocations leaves them scattered: without this, each swap still kept
    about 10 MB (measured over 20 swaps)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim  # this process's C library
    except (OSError, AttributeError):
        return  # not glibc (musl, macOS): nothing to ask for
    trim(0)


def _check_gguf(path: Path, setting: str) -> None:
    if not path.is_file():
        raise ModelConfigError(f"{setting}: model file {path} does not exist")
    if not os.access(path, os.R_OK):
        raise ModelConfigError(f"{setting}: model file {path} is not readable")
    with path.open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ModelConfigError(f"{setting}: {path} is not a GGUF model file")
