"""Connected numbers: creating and finding instances."""

from __future__ import annotations

import secrets

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
