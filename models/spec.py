"""How a model is configured: which provider serves it, where, and what its tokens cost."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

# What a fine-tuned local model says when the passages are silent: the text its versions are
# trained to say and served with (``ModelSpec.refusal``). It opens with a word no grounded answer
# starts with, so the probability of its first token is the model's own "I don't know" score,
# which a calibrated threshold turns into the refusal decision.
REFUSAL = ("Desculpe, não encontrei essa informação nos nossos materiais. "
           "Quer falar com um atendente?")


class ModelSpec(BaseModel):
    """One configured model; ``provider`` names the module of ``models.providers`` serving it."""

    name: str = Field(description="Name used to pick this model (per instance, per API call).")
    provider: str = Field(description="llamacpp or openai (module of models.providers).")
    path: Path | None = Field(None, description="GGUF file (llamacpp).")
    lora_path: Path | None = Field(None, description="LoRA adapter GGUF applied on top (llamacpp).")
    refusal: str = Field(
        REFUSAL, description="What the model says when the passages are silent, as it was "
        "trained to (a fine-tuned local model); the reply that hands the customer to a human.")
    refusal_threshold: float | None = Field(
        None, description="Probability of the refusal's first token at which a fine-tuned "
        "local model refuses; below it, it must answer (llamacpp; set by calibration).")
    prompt_sentences: int = Field(
        0, ge=0, description="Show the model the N passage sentences closest to the question "
        "instead of whole passages (0 = whole); a local adapter trained that way sets it.")
    prompt_passages: int = Field(
        0, ge=0, description="Show the model only the first N passages retrieved (0 = all); a "
        "local adapter trained on N passages sets it, whatever ATENDE_RETRIEVAL_TOP_K searches.")
    prompt_terms: float = Field(
        0.0, ge=0, description="Rank those sentences by e5 similarity plus this times the "
        "idf-weighted share of the question's terms each holds (0 = e5 only); set as trained.")
    prompt_ranker: str = Field(
        "", description="Embedder those sentences are ranked with, as in training (empty = the "
        "knowledge base's); a local adapter sets it, whatever ATENDE_EMBEDDER searches with.")
    # rag.units.LAYOUTS, spelled out: models uses none of our packages (a test keeps them equal)
    prompt_units: Literal["sentences", "structured"] = Field(
        "sentences", description="How those items are cut, as the version was trained "
        "(rag.units): sentences (faquad-v4, faquad-v5), or structured (a list item with its "
        "lead-in, a table row with its header).")
    prompt_history: bool = Field(
        True, description="Show the model the conversation's recent turns; a local adapter "
        "trained on single questions is shown none (with them it copied its previous reply).")
    base_url: str | None = Field(None, description="Server URL (openai), e.g. http://host/v1.")
    model: str | None = Field(None, description="Model name on the server (openai).")
    api_key: SecretStr | None = Field(None, description="API key (openai).")
    context: int = Field(4096, description="Context window in tokens.")
    threads: int | None = Field(None, description="CPU threads (llamacpp).")
    gpu_layers: int = Field(0, description="Layers offloaded to CUDA (llamacpp; -1 = all).")
    timeout_s: float = Field(60.0, description="Longest wait for one reply before giving up.")
    max_retries: int = Field(2, description="Retries on 429, 5xx and timeouts (openai).")
    price_in_per_1k: float = Field(0.0, description="Price of 1,000 prompt tokens (USD).")
    price_out_per_1k: float = Field(0.0, description="Price of 1,000 completion tokens (USD).")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """What a call cost, from this model's price table."""
        return (prompt_tokens * self.price_in_per_1k
                + completion_tokens * self.price_out_per_1k) / 1000.0
