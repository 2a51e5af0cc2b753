"""The migrations build the schema the models describe, on each database: a column added to a
model without its migration (or the other way round) fails here, not on a customer's upgrade."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from server.db import make_engine, migrate
from server.schema import Base
from tests.conftest import fresh_database


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_migrated_schema_is_the_models_schema(kind: str, tmp_path: Path) -> None:
    with fresh_database(kind, tmp_path) as url:
        migrate(url)
        engine = make_engine(url)
        try:
            with engine.connect() as conn, warnings.catch_warnings():
                # SQLite cannot reflect expression indexes; PostgreSQL compares them
                warnings.simplefilter("ignore")
                differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        finally:
            engine.dispose()
    assert differences == []
