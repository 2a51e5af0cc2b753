"""The project's chat template for Gemma, the one place it lives: training and serving use it.

The bundled Gemma 3 270M is the base checkpoint and carries no template of its own. Gemma has no
system role, so the system text opens the first user turn.
"""

from __future__ import annotations

from collections.abc import Sequence

from models.base import ChatMessage

BOS = "<bos>"
START = "<start_of_turn>"
END = "<end_of_turn>"
STOP = [END]
_ROLE = {"user": "user", "assistant": "model"}


def render(messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True) -> str:
    """The prompt text for a conversation; ends with the model's turn opened when asked."""
    system = "\n\n".join(m["content"].strip() for m in messages if m["role"] == "system")
    turns = [m for m in messages if m["role"] != "system"]
    parts = [BOS]
    for i, m in enumerate(turns):
        content = m["content"].strip()
        if i == 0 and system:
            content = f"{system}\n\n{content}" if m["role"] == "user" else content
        parts.append(f"{START}{_ROLE[m['role']]}\n{content}{END}\n")
    if add_generation_prompt:
        parts.append(f"{START}model\n")
    return "".join(parts)
