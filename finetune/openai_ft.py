"""OpenAI fine-tuning as an option: the curated set in OpenAI's chat JSONL, and a job run.

The prompt is the one serving builds (persona, rules, passages), so a model tuned there answers
the way the local one is asked. The ``openai`` client reads OPENAI_API_KEY and OPENAI_BASE_URL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from finetune.curate import Pair
from finetune.examples import as_passage, docs_of
from rag import prompt

DONE = {"succeeded", "failed", "cancelled"}


def to_jsonl(pairs: Sequence[Pair], out: Path) -> int:
    """Write one chat example per pair (system with passages, user, assistant); returns the
    number written."""
    with out.open("w") as fh:
        for p in pairs:
            messages = prompt.build(prompt.DEFAULT_PERSONA,
                                    [as_passage(d, t) for d, t in zip(docs_of(p), p.passages,
                                                                    strict=True)], p.question)
            line = {"messages": [*messages, {"role": "assistant", "content": p.answer}]}
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    return len(pairs)


def start(client: Any, jsonl: Path, model: str, *, suffix: str | None = None,
          epochs: int | None = None) -> Any:
    """Upload the file and create the fine-tuning job; returns the job."""
    with jsonl.open("rb") as fh:
        uploaded = client.files.create(file=fh, purpose="fine-tune")
    extra: dict[str, Any] = {}
    if suffix:
        extra["suffix"] = suffix
    if epochs:
        extra["hyperparameters"] = {"n_epochs": epochs}
    return client.fine_tuning.jobs.create(training_file=uploaded.id, model=model, **extra)


def wait(client: Any, job_id: str, *, poll_s: float = 10.0, timeout_s: float = 7200.0,
         on_status: Callable[[Any], None] = lambda job: None) -> Any:
    """Poll the job until it succeeds, fails or is cancelled (or the timeout passes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        on_status(job)
        if job.status in DONE or time.monotonic() > deadline:
            return job
        time.sleep(poll_s)
