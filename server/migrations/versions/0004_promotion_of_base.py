"""a promotion row may name no version: the plain base model serves

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 14:20:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("model_promotions") as batch:
        batch.alter_column("version_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    """Downgrade schema: only while every row names a version (rows are never deleted)."""
    with op.batch_alter_table("model_promotions") as batch:
        batch.alter_column("version_id", existing_type=sa.Integer(), nullable=False)
