"""The pluggable LLM layer: one interface (``models.base.Provider``), one module per provider."""

from models.base import ChatMessage, Completion, ModelConfigError, ModelError, Provider

__all__ = ["ChatMessage", "Completion", "ModelConfigError", "ModelError", "Provider"]
