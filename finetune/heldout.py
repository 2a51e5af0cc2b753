"""Each checkpoint of a run asked the held-out pairs in transformers: which one to export.

Per held-out example: the probability that the reply opens the refusal (the score serving
thresholds) and the greedy reply with the refusal forbidden at its first token (what serving
sends below the threshold). Batched, so on a GPU all checkpoints of a run take seconds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from finetune.fit import check_tokenizer, checkpoints_of
from models import chat_template
from models.spec import REFUSAL


def ask(model: Any, tokenizer: Any, items: list[dict[str, Any]], *, max_new_tokens: int = 64,
        batch: int = 32) -> list[dict[str, Any]]:
    """``{"kind", "p_refuse", "reply"}`` for each example, in order."""
    import torch

    refusal = tokenizer(REFUSAL, add_special_tokens=False)["input_ids"][0]
    end = tokenizer.convert_tokens_to_ids(chat_template.END)  # serving stops there too
    tokenizer.padding_side = "left"  # generation continues every row from its last token
    out: list[dict[str, Any]] = []
    model.eval()
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        enc = tokenizer([chat_template.render(ex["messages"]) for ex in chunk],
                        add_special_tokens=False, padding=True, return_tensors="pt")
        enc = enc.to(model.device)
        with torch.no_grad():
            # Only the last position's logits: all of them would be prompt x 262k floats.
            first = model(**enc, logits_to_keep=1).logits[:, -1].float().softmax(-1)[:, refusal]
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 begin_suppress_tokens=[refusal],
                                 eos_token_id=[end, tokenizer.eos_token_id],
                                 pad_token_id=tokenizer.pad_token_id)
        replies = tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:])
        out += [{"kind": ex["kind"], "p_refuse": float(p),
                 "reply": _plain(r.split(chat_template.END)[0], tokenizer)}
                for ex, p, r in zip(chunk, first.tolist(), replies, strict=True)]
    return out


def _plain(text: str, tokenizer: Any) -> str:
    for special in tokenizer.all_special_tokens:  # padding, <eos>
        text = text.replace(special, "")
    return text.strip()


def _digest(items: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()


def saved(run: Path, items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """``RUN/heldout.json`` if it holds these items and exactly the run's checkpoints."""
    path = run / "heldout.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    fresh = data.get("items_sha256") == _digest(items) and \
        set(data.get("checkpoints", {})) == {p.name for p in checkpoints_of(run)}
    return data["checkpoints"] if fresh else None


def checkpoints(run: Path, base_hf: Path, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Every checkpoint of ``run`` asked ``items``: ``{"checkpoint-N": [answers...]}``."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    found = checkpoints_of(run)
    if not found:
        raise ValueError(f"{run} has no checkpoints")
    tokenizer = AutoTokenizer.from_pretrained(str(base_hf))
    check_tokenizer(tokenizer)
    cuda = torch.cuda.is_available()
    results = {}
    for ckpt in found:
        base = AutoModelForCausalLM.from_pretrained(
            str(base_hf), dtype=torch.bfloat16 if cuda else torch.float32)
        model = PeftModel.from_pretrained(base, str(ckpt)).to("cuda" if cuda else "cpu")
        results[ckpt.name] = ask(model, tokenizer, items)
    (run / "heldout.json").write_text(json.dumps(
        {"items_sha256": _digest(items), "checkpoints": results}, ensure_ascii=False))
    return results


def summary(asked: list[dict[str, Any]], items: list[dict[str, Any]],
            budget: float = 0.05) -> dict[str, float]:
    """What serving would do with one checkpoint, at its refusal threshold for ``budget``:
    answerable replies containing the answer, wrongly refused, unanswerable refused."""
    from eval.scoring import contains
    from finetune.calibrate import choose

    cal = choose([(a["kind"], a["p_refuse"]) for a in asked], budget)
    answers = [(a, ex) for a, ex in zip(asked, items, strict=True) if a["kind"] == "answer"]
    right = sum(a["p_refuse"] < cal.threshold and contains(a["reply"], [ex["answer"]])
                for a, ex in answers)
    return {"threshold": cal.threshold, "containment": right / max(len(answers), 1),
            "wrongly_refused": cal.wrongly_refused,
            "unanswerable_refused": cal.unanswerable_refused}
