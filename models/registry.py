"""Providers by name: ``models.providers.<provider>`` exposes ``create(spec) -> Provider``.

Adding a provider is adding one module there.
"""

from __future__ import annotations

import importlib
import pkgutil

from models import providers
from models.base import ModelConfigError, Provider
from models.spec import ModelSpec


def known_providers() -> list[str]:
    """Provider names that can be configured."""
    return sorted(m.name for m in pkgutil.iter_modules(providers.__path__))


def create(spec: ModelSpec) -> Provider:
    """A provider serving the model a spec describes."""
    if spec.provider not in known_providers():
        raise ModelConfigError(f"model {spec.name!r}: unknown provider {spec.provider!r}; "
                               f"known: {', '.join(known_providers())}")
    module = importlib.import_module(f"models.providers.{spec.provider}")
    provider: Provider = module.create(spec)
    return provider
