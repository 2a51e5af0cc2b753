"""leases on work a dead worker leaves; the simulator's send takes an idempotency key

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 11:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("simulator_messages") as batch:
        batch.add_column(sa.Column("ref", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_sim_instance_ref", ["instance", "ref"])


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("simulator_messages") as batch:
        batch.drop_constraint("uq_sim_instance_ref", type_="unique")
        batch.drop_column("ref")
    op.drop_table("leases")
