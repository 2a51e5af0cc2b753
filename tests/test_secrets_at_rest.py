"""Instance secrets and gateway keys are sealed in the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from cryptography.fernet import Fernet
from sqlalchemy import select

from server import secretbox
from server.schema import Instance
from server.services import instances
from server.settings import Settings, get_settings, use_settings
from tests.conftest import SECRET_KEY, fresh_database, migrated_over, raw_sql


@pytest.fixture
def settings_back() -> Iterator[None]:
    saved = get_settings()
    yield
    use_settings(saved)


def test_a_database_dump_holds_no_usable_secret(sessions, db_url: str) -> None:
    inst = instances.ensure_simulator(sessions, "loja", "http://127.0.0.1:9")
    assert inst.webhook_secret and inst.api_key
    ((secret, key),) = raw_sql(db_url, "SELECT webhook_secret, api_key FROM instances")
    for stored, plain in ((secret, inst.webhook_secret), (key, inst.api_key)):
        assert stored.startswith("fernet:") and plain not in stored
    with sessions() as s:  # what the code reads is the secret itself
        again = s.scalars(select(Instance)).one()
        assert (again.webhook_secret, again.api_key) == (inst.webhook_secret, inst.api_key)


def test_another_key_cannot_open_them_and_says_what_to_set(sessions, settings_back) -> None:
    instances.ensure_simulator(sessions, "loja", "http://127.0.0.1:9")
    use_settings(Settings(secret_key=Fernet.generate_key().decode()))
    with sessions() as s, pytest.raises(secretbox.SecretKeyError, match="ATENDE_SECRET_KEY"):
        s.scalars(select(Instance)).one()
    # Rotation: the new key first, the old one after it, opens what the old one sealed.
    use_settings(Settings(secret_key=f"{Fernet.generate_key().decode()},{SECRET_KEY}"))
    with sessions() as s:
        assert s.scalars(select(Instance)).one().webhook_secret


def test_without_a_key_the_data_folder_gets_one_only_its_owner_reads(tmp_path: Path,
                                                                     settings_back) -> None:
    use_settings(Settings(data_dir=tmp_path, secret_key=None))
    sealed = secretbox.seal("segredo")
    path = secretbox.key_file(tmp_path.resolve())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secretbox.unseal(sealed) == "segredo" and "segredo" not in sealed


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_migration_seals_the_secrets_already_stored(kind: str, tmp_path: Path) -> None:
    with fresh_database(kind, tmp_path) as url:
        cfg = migrated_over(url, "0006", "INSERT INTO instances (name, provider, webhook_secret, "
                            "api_key, ai_enabled, created_at) VALUES ('old', 'simulator', "
                            "'plain-s3cret', 'plain-key', true, CURRENT_TIMESTAMP)")
        ((secret, key),) = raw_sql(url, "SELECT webhook_secret, api_key FROM instances")
        assert secretbox.unseal(secret) == "plain-s3cret" and secretbox.unseal(key) == "plain-key"
        assert "plain" not in secret + key
        command.downgrade(cfg, "0006")
        assert raw_sql(url, "SELECT webhook_secret, api_key FROM instances") == [
            ("plain-s3cret", "plain-key")]
