"""The training step alone: prepared examples + base model -> LoRA adapter (TRL + PEFT).

It needs only torch, transformers, peft, trl, datasets and gguf, so a run prepared here
(``atende finetune train CONFIG --prepare-only``) can be trained on a GPU machine with
``python -m finetune.fit RUN/config.yaml --set base_gguf=PATH``; bringing the run folder back
(``checkpoints/``, ``fit.json``) and running ``atende finetune train CONFIG`` again exports,
calibrates and registers it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from finetune.config import TrainConfig, load
from models import chat_template

EXAMPLES = "examples.jsonl"  # the training examples of a prepared run
HELD_OUT = "calibration.jsonl"  # held-out pairs, asked with and without their answer


def base_model_dir(gguf_file: Path) -> Path:
    """The GGUF dequantised into a transformers folder, made once (loading a GGUF takes ~1 min)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = gguf_file.parent / f"{gguf_file.stem}-{gguf_file.stat().st_size}-hf"
    if not (folder / "config.json").is_file():
        tmp = folder.with_name(folder.name + ".part")
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
        check_tokenizer(tokenizer)
        tokenizer.save_pretrained(tmp)
        model = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent),
                                                     gguf_file=gguf_file.name)
        # The weights are already dequantised to float32; only the marker blocks saving.
        model.hf_quantizer = None  # type: ignore[assignment]
        del model.config.quantization_config
        model.save_pretrained(tmp)
        tmp.rename(folder)
    return folder


def check_tokenizer(tokenizer: Any) -> None:
    """Refuse a tokenizer converted without its merges (transformers 5.17 does this to Gemma's
    GGUF): it splits text into characters, and a run trained on that would be worthless."""
    import transformers

    sample = "atendimento ao cliente"
    if len(tokenizer(sample, add_special_tokens=False)["input_ids"]) >= len(sample) // 2:
        raise RuntimeError(f"transformers {transformers.__version__} reads this GGUF's "
                           "tokenizer as characters; use the version in pyproject.toml")


def read_examples(path: Path) -> list[dict[str, Any]]:
    """Examples as prepared: ``{"messages", "completion", "kind", "answer"}`` per line."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tokenize(items: list[dict[str, Any]], tokenizer: Any, max_length: int) -> list[dict]:
    """Prompt and completion token ids, with the completion mask TRL turns into labels."""
    rows = []
    for ex in items:
        prompt_ids = tokenizer(chat_template.render(ex["messages"]),
                               add_special_tokens=False)["input_ids"]
        reply_ids = tokenizer(f"{ex['completion']}{chat_template.END}",
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


def fit(cfg: TrainConfig, base: Path, callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Train (resuming from the last checkpoint) on ``cfg.out/examples.jsonl``; save ``adapter/``.

    Returns the run's figures (kept in ``fit.json``): examples, loss, steps, seconds, tokens per
    second, device; and the model type and layer count the GGUF export needs.
    """
    # A chosen step with no checkpoint is refused before the libraries and model load, not after.
    chosen = _checkpoint_at(cfg.out, cfg.export_step) if cfg.export_step else None
    import datasets
    import torch
    from peft import LoraConfig, set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig

    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    hf = base_model_dir(base)
    tokenizer = AutoTokenizer.from_pretrained(str(hf))
    check_tokenizer(tokenizer)
    items = read_examples(cfg.out / EXAMPLES)
    rows = tokenize(items, tokenizer, cfg.max_length)
    cuda = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(
        str(hf), dtype=torch.bfloat16 if cuda else torch.float32)
    each_epoch = cfg.save_steps == 0
    args = SFTConfig(
        output_dir=str(cfg.out / "checkpoints"), num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine", warmup_steps=cfg.warmup_ratio,
        logging_steps=cfg.logging_steps, save_strategy="epoch" if each_epoch else "steps",
        save_steps=cfg.save_steps or 1, save_total_limit=None if each_epoch else 2,
        seed=cfg.seed, report_to=[], use_cpu=not cuda, bf16=cuda, fp16=False,
        gradient_checkpointing=cuda, completion_only_loss=True,
        max_length=None, disable_tqdm=callbacks is not None, dataloader_num_workers=0)
    peft = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.target_modules, task_type="CAUSAL_LM")
    trainer = trainer_class()(model=model, args=args, processing_class=tokenizer,
                              train_dataset=datasets.Dataset.from_list(rows),
                              peft_config=peft, callbacks=callbacks)
    saved = cfg.out / "checkpoints"
    resume = chosen or (get_last_checkpoint(str(saved)) if saved.is_dir() else None)
    started = time.monotonic()
    if resume and (cfg.export_step or _finished(Path(resume), cfg.max_steps)):
        # A finished run asked again, a chosen checkpoint, or one trained elsewhere: take it as
        # it is, train nothing more.
        set_peft_model_state_dict(trainer.model,
                                  load_file(str(Path(resume) / "adapter_model.safetensors")))
        loss, steps, new_steps = _logged_loss(Path(resume)), _step_of(resume), 0
    else:
        out = trainer.train(resume_from_checkpoint=resume)
        loss, steps = out.training_loss, out.global_step
        new_steps = steps - _step_of(resume)
    seconds = time.monotonic() - started
    trainer.model.save_pretrained(str(cfg.out / "adapter"))
    seen = min(new_steps * cfg.batch_size * cfg.grad_accum, len(rows) * cfg.epochs)
    tokens = seen * sum(len(r["input_ids"]) for r in rows) / max(len(rows), 1)
    figures = {
        "examples": len(rows), "refusals": sum(e["kind"] == "refuse" for e in items),
        "dropped_too_long": len(items) - len(rows), "train_loss": loss, "steps": steps,
        "seconds": round(seconds, 1) if new_steps else None,
        "tokens_per_second": round(tokens / seconds, 1) if new_steps else None,
        "device": "cuda" if cuda else "cpu", "base": str(base),
    }
    record = cfg.out / "fit.json"
    if new_steps:
        record.write_text(json.dumps(figures, indent=2))
    elif record.is_file():  # nothing trained now: how the run was trained (maybe on a GPU)
        old = json.loads(record.read_text())
        figures.update({k: old[k] for k in ("seconds", "tokens_per_second", "device")})
    return {**figures, "model_type": model.config.model_type,
            "n_layers": model.config.num_hidden_layers}


def _finished(checkpoint: Path, max_steps: int) -> bool:
    """The checkpoint reached its run's last step, or the step this config stops at."""
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return any(state["global_step"] >= last > 0 for last in (state["max_steps"], max_steps))


def checkpoints_of(run: Path) -> list[Path]:
    """The run's saved checkpoints, by step."""
    return sorted((run / "checkpoints").glob("checkpoint-*"), key=lambda p: _step_of(str(p)))


def _checkpoint_at(run: Path, step: int) -> str:
    """The checkpoint saved at exactly ``step`` (to export a chosen one of a run)."""
    folder = run / "checkpoints" / f"checkpoint-{step}"
    if not (folder / "adapter_model.safetensors").is_file():
        saved = ", ".join(p.name for p in checkpoints_of(run)) or "none"
        raise ValueError(f"no checkpoint at step {step} in {run / 'checkpoints'} "
                         f"(saved: {saved})")
    return str(folder)


def _logged_loss(checkpoint: Path) -> float | None:
    """The last training loss the run logged up to this checkpoint (None if none was)."""
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    losses = [e["loss"] for e in state.get("log_history", []) if "loss" in e]
    return float(losses[-1]) if losses else None


def _step_of(checkpoint: str | None) -> int:
    return int(checkpoint.rsplit("-", 1)[1]) if checkpoint else 0


def main(argv: list[str] | None = None) -> None:
    """``python -m finetune.fit RUN/config.yaml [--set k=v]``: train a prepared run here."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("config", type=Path, help="config.yaml of a prepared run folder")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="override a config key, e.g. --set base_gguf=/data/gemma.gguf")
    ap.add_argument("--heldout", action="store_true",
                    help="then ask every checkpoint the held-out pairs (RUN/heldout.json)")
    a = ap.parse_args(argv)
    # The run is the folder that holds the config, wherever it was copied to.
    cfg = load(a.config, [f"out={a.config.parent}", *a.overrides])
    if cfg.base_gguf is None:
        ap.error("--set base_gguf=PATH is required outside the product (no bundled model here)")
    print(json.dumps(fit(cfg, cfg.base_gguf)))
    if a.heldout:
        from finetune import heldout

        heldout.checkpoints(cfg.out, base_model_dir(cfg.base_gguf),
                            read_examples(cfg.out / HELD_OUT))


if __name__ == "__main__":
    main()
