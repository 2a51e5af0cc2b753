"""Secrets at rest: instance webhook secrets and gateway keys are sealed with Fernet
(``cryptography``: AES-128-CBC with an HMAC-SHA256 tag, a well-kept recipe, not our own) before
they reach the database, so a database dump or backup holds no usable credential.

The key is ``ATENDE_SECRET_KEY`` (several, comma-separated, to rotate: the first seals, any
opens), or, on the embedded defaults, a key made once in ``DATA_DIR/secret.key`` (mode 0600).
Processes that share a database must share the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from server.settings import Settings, get_settings

PREFIX = "fernet:"


class SecretKeyError(RuntimeError):
    """A sealed secret cannot be opened with the configured key; says what to set."""


def key_file(data_dir: Path) -> Path:
    return data_dir / "secret.key"


@lru_cache(maxsize=16)
def _own_key(data_dir: Path) -> str:
    """The data folder's key, made on first use, readable by its owner alone. Read once per
    process: every webhook opens its number's secrets, and the file never changes (a new key
    comes through ATENDE_SECRET_KEY, which takes precedence)."""
    path = key_file(data_dir)
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(Fernet.generate_key().decode())
    return path.read_text().strip()


@lru_cache(maxsize=4)
def _box(keys: str) -> MultiFernet:
    try:
        return MultiFernet([Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()])
    except ValueError:
        raise SecretKeyError("ATENDE_SECRET_KEY must be Fernet keys (32 url-safe base64 bytes, "
                        "comma-separated): make one with `atende secret-key`") from None


def _keys(settings: Settings) -> str:
    given = settings.secret_key.get_secret_value() if settings.secret_key else ""
    return given or _own_key(settings.data_dir.resolve())


def box() -> MultiFernet:
    return _box(_keys(get_settings()))


def derived_key(settings: Settings, purpose: str) -> str:
    """A key for another purpose (signing the web app's CSRF tokens), derived from the sealing
    key by HMAC-SHA256: still one secret to keep, shared by every process that needs it, and
    knowing the derived key tells nothing of the one that seals."""
    first = _keys(settings).split(",")[0].strip()
    return hmac.new(first.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def seal(plain: str) -> str:
    return PREFIX + box().encrypt(plain.encode()).decode()


def unseal(stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise SecretKeyError("a secret in the database is not sealed: run `atende db upgrade`")
    return _open(box(), stored)


# Every webhook reads its instance's secrets: opening each costs an HMAC and an AES pass, about
# a third of a millisecond. A sealed value opens to the same text for as long as the keys are
# the same (the box is part of the key of this cache), so it is opened once.
@lru_cache(maxsize=1024)
def _open(keys: MultiFernet, stored: str) -> str:
    try:
        return keys.decrypt(stored[len(PREFIX):].encode()).decode()
    except InvalidToken:
        raise SecretKeyError("a secret in the database was sealed with another key: set "
                        "ATENDE_SECRET_KEY to the key that sealed it") from None


class Sealed(TypeDecorator[str]):
    """A string column stored sealed; reads give the plain text back."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else seal(str(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else unseal(value)
