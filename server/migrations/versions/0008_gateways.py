"""real gateways: instance options and send queue, connection truth, message types and media,
unsupported payloads

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 14:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("options", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("verify_token", sa.String(length=512), nullable=True))
        batch.add_column(sa.Column("send_interval_s", sa.Float(), nullable=False,
                                   server_default="1.0"))
        batch.add_column(sa.Column("daily_cap", sa.Integer(), nullable=False,
                                   server_default="1000"))
        batch.add_column(sa.Column("send_clock", sa.Float(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("sent_day", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("sent_today", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("connection_state", sa.String(length=16), nullable=False,
                                   server_default="unknown"))
        batch.add_column(sa.Column("connection_detail", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("connection_since", sa.DateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("connection_checked_at", sa.DateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("qr", sa.Text(), nullable=True))
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("type", sa.String(length=16), nullable=False,
                                   server_default="text"))
        batch.add_column(sa.Column("media", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("via", sa.String(length=16), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("slot_at", sa.Float(), nullable=True))
    op.create_table(
        "unsupported_payloads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_unsupported_payloads_instance_id", "unsupported_payloads",
                    ["instance_id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_unsupported_payloads_instance_id", table_name="unsupported_payloads")
    op.drop_table("unsupported_payloads")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("slot_at")
    with op.batch_alter_table("messages") as batch:
        for col in ("via", "media", "type"):
            batch.drop_column(col)
    with op.batch_alter_table("instances") as batch:
        for col in ("deleted_at", "qr", "connection_checked_at", "connection_since",
                    "connection_detail", "connection_state", "sent_today", "sent_day",
                    "send_clock", "daily_cap", "send_interval_s", "verify_token", "options"):
            batch.drop_column(col)
