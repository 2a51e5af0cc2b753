"""A PEFT LoRA adapter into a GGUF adapter file that llama.cpp loads beside the base GGUF.

Tensor names follow llama.cpp's own mapping (``gguf.get_tensor_name_map``), the one its
``convert_lora_to_gguf.py`` uses; each adapted weight ``W`` becomes ``W.lora_a`` ([r, in]) and
``W.lora_b`` ([out, r]), and llama.cpp scales by ``adapter.lora.alpha / r`` as PEFT does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file

_LORA = re.compile(r"^(?:base_model\.model\.)?(?P<base>.+)\.lora_(?P<ab>[AB])(?:\.default)?"
                   r"\.weight$")
ARCH = {"gemma3_text": gguf.MODEL_ARCH.GEMMA3, "gemma3": gguf.MODEL_ARCH.GEMMA3}


class ExportError(ValueError):
    """The adapter cannot be written as GGUF (unknown architecture or tensor)."""


def adapter_to_gguf(adapter_dir: Path, out: Path, *, model_type: str, n_layers: int,
                    dtype: str = "f16") -> Path:
    """Write the adapter in ``adapter_dir`` (PEFT's files) as a GGUF LoRA adapter at ``out``."""
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    if cfg.get("use_rslora") or cfg.get("use_dora"):
        raise ExportError("rsLoRA and DoRA adapters have no GGUF form in llama.cpp")
    if model_type not in ARCH:
        raise ExportError(f"no GGUF mapping for model type {model_type!r}")
    names = gguf.get_tensor_name_map(ARCH[model_type], n_layers)
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    np_type = np.float16 if dtype == "f16" else np.float32
    writer = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[ARCH[model_type]])
    writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(cfg["lora_alpha"]))
    for key in sorted(tensors):
        m = _LORA.match(key)
        if not m:
            raise ExportError(f"unexpected tensor {key!r} in the adapter")
        base = m["base"].removeprefix("model.language_model.").removeprefix("model.")
        target = names.get_name(f"model.{base}.weight", try_suffixes=(".weight",))
        if target is None:
            raise ExportError(f"no llama.cpp name for {key!r}")
        writer.add_tensor(f"{target}.lora_{m['ab'].lower()}", tensors[key].astype(np_type))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
