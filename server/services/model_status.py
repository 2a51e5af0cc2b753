"""Whether a configured model answers: loaded for local ones, reachable for remote ones."""

from __future__ import annotations

from typing import Any

import httpx

from models.spec import ModelSpec
from server.settings import Settings


def status_of(spec: ModelSpec, settings: Settings, *, check: bool = True) -> dict[str, Any]:
    """A row describing the model; secrets are never part of it."""
    role = ("default" if spec.name == settings.llm_default else
            f"fallback {settings.llm_fallback.index(spec.name) + 1}"
            if spec.name in settings.llm_fallback else "")
    where = str(spec.path) if spec.provider == "llamacpp" else f"{spec.base_url} ({spec.model})"
    row: dict[str, Any] = {"name": spec.name, "provider": spec.provider, "where": where,
                           "price_in_per_1k": spec.price_in_per_1k,
                           "price_out_per_1k": spec.price_out_per_1k, "role": role,
                           "state": "not checked"}
    if check:
        row["state"] = _local_state(spec) if spec.provider == "llamacpp" else _remote_state(spec)
    return row


def _local_state(spec: ModelSpec) -> str:
    from models import registry
    from models.base import ModelConfigError

    try:
        registry.create(spec)
    except ModelConfigError as exc:
        return f"error: {exc}"
    return "loads"


def _remote_state(spec: ModelSpec) -> str:
    base = (spec.base_url or "https://api.openai.com/v1").rstrip("/")
    headers = {"Authorization": f"Bearer {spec.api_key.get_secret_value()}"} if spec.api_key \
        else {}
    try:
        resp = httpx.get(f"{base}/models", headers=headers, timeout=5)
    except httpx.HTTPError as exc:
        return f"unreachable ({type(exc).__name__})"
    if resp.status_code == 401:
        return "refused: check the API key"
    if resp.status_code >= 400:
        return f"error {resp.status_code}"
    try:
        ids = {m.get("id") for m in resp.json().get("data", [])}
    except (ValueError, AttributeError):
        return "reachable (model list unreadable)"
    return "ready" if spec.model in ids or not ids else f"reachable; no model {spec.model!r}"
