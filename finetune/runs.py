"""A training run as the CLI shows it: progress while training, then refusal calibration."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from finetune import calibrate
from finetune.config import TrainConfig, load
from finetune.train import TrainResult, read_jsonl, train
from rag.embedders import RANKER
from rag.evidence import Rule
from rag.index import Search
from rag.units import SENTENCES


def _callback(progress: Progress, console: Console) -> Any:
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):
        task: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.task = progress.add_task("Training", total=state.max_steps,
                                          completed=state.global_step)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            progress.update(self.task, completed=state.global_step)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
                   **kw: Any) -> None:
            if logs and "loss" in logs:
                console.log(f"step {state.global_step}: loss {float(logs['loss']):.3f}")

    return RichProgress()


def train_with_progress(cfg: TrainConfig, console: Console) -> TrainResult:
    """``finetune.train.train`` with a rich progress bar and the loss as it goes."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console) as progress:
        return train(cfg, callbacks=[_callback(progress, console)])


def calibrate_run(result: TrainResult, console: Console, budget: float = 0.05,
                  on_sets: Sequence[Path] = (), top_k: int = 2,
                  sentences: int = 0, terms: float = 0.0,
                  ranked_with: str = RANKER, *, rule: Rule | None = None,
                  search: Search | None = None, layout: str = "") -> calibrate.Calibration:
    """Load the exported adapter in llama.cpp and choose its refusal threshold: on the held-out
    pairs' own passages, or on ``on_sets`` (eval sets, scores pooled) as serving asks them,
    behind serving's evidence ``rule`` and ``search`` (the caller's settings), in the units the
    run was trained on (``layout``; empty: as its config says)."""
    from models.providers.llamacpp import LlamaCppProvider

    items = read_jsonl(result.out / "calibration.jsonl")
    llm = LlamaCppProvider(Path(result.metrics["base"]), lora_path=result.adapter_gguf,
                           setting="--model", n_ctx=4096)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=console) as progress:
        if not on_sets:
            task = progress.add_task("Calibrating refusals", total=len(items))
            scored = calibrate.probabilities(llm, items, lambda: progress.advance(task))
        else:
            if rule is None or search is None:
                raise ValueError("calibrating on an eval set needs serving's rule and search")
            asked = {ex.messages[-1]["content"] for ex in items}
            scored = [s for on_set in on_sets
                      for s in _on_set(llm, on_set, asked, top_k, sentences, terms, ranked_with,
                                       progress, rule, search, layout or units_of(result.out))]
            if not scored:
                raise ValueError("none of the run's held-out questions, and no dev case, is in "
                                 + ", ".join(map(str, on_sets)))
    return calibrate.choose(scored, budget)


def units_of(run: Path) -> str:
    """The units a run's examples were cut into: its config's (a run without one: sentences,
    as every run before units had a layout)."""
    config = run / "config.yaml"
    return load(config).focus_units if config.is_file() else SENTENCES


def _on_set(llm: Any, set_dir: Path, held_out: set[str], top_k: int, sentences: int,
            terms: float, ranked_with: str, progress: Progress, rule: Rule,
            search: Search, layout: str) -> list[tuple[str, float]]:
    """The eval set's held-out questions, asked on a scratch collection of its documents
    (embedded with the embedder the run ranked its items with, so focus ranks as trained)."""
    import tempfile

    from eval import evalset, retrieval
    from rag.edge import EdgeClient
    from rag.embedders import ranker
    from rag.index import KnowledgeBase

    es = evalset.load(set_dir)
    # The run's held-out questions; a set it never saw (a business kept out of training) gives
    # its dev split, the cases a choice may look at.
    es.cases = [c for c in es.cases if c.question in held_out] or \
        [c for c in es.cases if c.split == "dev"]
    if not es.cases:  # a report business: never looked at
        return []
    with tempfile.TemporaryDirectory(prefix="atende-calibrate-") as scratch:
        kb = KnowledgeBase(EdgeClient(scratch), ranker(ranked_with))
        try:
            task = progress.add_task("Ingesting", total=len(es.docs))
            retrieval.ingest(es, kb, "cal", lambda: progress.advance(task))
            task = progress.add_task("Calibrating refusals", total=len(es.cases))
            return calibrate.on_retrieval(llm, es, kb, "cal", rule, top_k, search, sentences,
                                          terms, lambda: progress.advance(task), layout)
        finally:
            kb.client.close()
