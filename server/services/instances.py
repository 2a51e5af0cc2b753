"""Connected numbers: creating, finding and changing instances."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.schema import Instance


def ensure_simulator(sessions: sessionmaker[Session], name: str, public_url: str) -> Instance:
    """The simulator instance ``name``, created with fresh secrets if missing."""
    try:
        with sessions.begin() as s:
            inst = s.scalar(select(Instance).where(Instance.name == name))
            if inst is None:
                inst = Instance(name=name, provider="simulator",
                                webhook_secret=secrets.token_urlsafe(32),
                                api_key=secrets.token_urlsafe(24))
                s.add(inst)
            inst.api_url = public_url
            return inst
    except IntegrityError:  # created by a concurrent start
        with sessions() as s:
            return s.scalars(select(Instance).where(Instance.name == name)).one()


def update(sessions: sessionmaker[Session], name: str, changes: dict[str, Any], *,
           models: set[str]) -> Instance:
    """Change how the assistant works on a number; ``models`` are the configured ones (an
    unknown model is a ValueError, an unknown instance a LookupError). ``ai_enabled: null``
    leaves it as it is: it has no default to return to."""
    for model in [changes.get("model")] + (changes.get("fallback_models") or []):
        if model is not None and model not in models:
            raise ValueError(f"unknown model {model!r}; configured: {sorted(models)}")
    with sessions.begin() as s:
        inst = s.scalar(select(Instance).where(Instance.name == name))
        if inst is None:
            raise LookupError(f"no instance {name!r}")
        if changes.get("ai_enabled") is None:
            changes.pop("ai_enabled", None)
        for key, value in changes.items():
            setattr(inst, key, value)
        s.flush()
        return inst
