"""A training run as the CLI shows it: progress while training, then refusal calibration."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from finetune import calibrate
from finetune.config import TrainConfig
from finetune.train import TrainResult, read_jsonl, train


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


def calibrate_run(result: TrainResult, console: Console,
              budget: float = 0.05) -> calibrate.Calibration:
    """Load the exported adapter in llama.cpp and choose its refusal threshold."""
    from pathlib import Path

    from models.providers.llamacpp import LlamaCppProvider

    items = read_jsonl(result.out / "calibration.jsonl")
    llm = LlamaCppProvider(Path(result.metrics["base"]), lora_path=result.adapter_gguf,
                           setting="--model", n_ctx=4096)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=console) as progress:
        task = progress.add_task("Calibrating refusals", total=len(items))
        scored = calibrate.probabilities(llm, items, lambda: progress.advance(task))
    return calibrate.choose(scored, budget)
