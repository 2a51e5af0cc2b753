"""answer modes: the one the gate chose for each knowledge base

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 00:00:00

A knowledge base is answered by the model, by extraction (the best passage unit, no model) or
by the model with extraction as the guard's fallback, as the gate chose on the company's own
questions (``server.services.answer_modes``). Rows are only added; the latest of a collection
is its mode, and a collection with none answers in the shipped default.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "answer_modes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("gate", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_answer_modes_collection", "answer_modes", ["collection", "id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_answer_modes_collection", "answer_modes")
    op.drop_table("answer_modes")
