"""instance webhook secrets and gateway keys sealed at rest (server.secretbox)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 12:00:00

"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

from server.secretbox import PREFIX, seal, unseal

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema: room for the sealed form, then every stored secret sealed."""
    with op.batch_alter_table("instances") as batch:
        batch.alter_column("webhook_secret", type_=sa.String(length=512),
                           existing_type=sa.String(length=128), existing_nullable=False)
        batch.alter_column("api_key", type_=sa.String(length=512),
                           existing_type=sa.String(length=256), existing_nullable=True)
    _each(lambda v: v if v.startswith(PREFIX) else seal(v))


def downgrade() -> None:
    """Downgrade schema: secrets back in plain text."""
    _each(lambda v: unseal(v) if v.startswith(PREFIX) else v)
    with op.batch_alter_table("instances") as batch:
        batch.alter_column("webhook_secret", type_=sa.String(length=128),
                           existing_type=sa.String(length=512), existing_nullable=False)
        batch.alter_column("api_key", type_=sa.String(length=256),
                           existing_type=sa.String(length=512), existing_nullable=True)


def _each(change: Callable[[str], str]) -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, webhook_secret, api_key FROM instances")).fetchall()
    for row_id, secret, key in rows:
        conn.execute(sa.text("UPDATE instances SET webhook_secret = :s, api_key = :k "
                             "WHERE id = :id"),
                     {"s": change(secret), "k": None if key is None else change(key),
                      "id": row_id})
