"""scheduled messages: a text left to go out later, once or on a repeat, and what each sent

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 00:45:35

``scheduled_sends`` is unique on (schedule, occurrence), so an occurrence goes out once
whichever worker reaches it (``server.services.schedules``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "scheduled_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("repeat", sa.String(length=100), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("missed", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("scheduled_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scheduled_messages_conversation_id"),
                              ["conversation_id"], unique=False)
        batch_op.create_index("ix_scheduled_messages_due", ["status", "next_at"], unique=False)
    op.create_table(
        "scheduled_sends",
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.ForeignKeyConstraint(["schedule_id"], ["scheduled_messages.id"]),
        sa.PrimaryKeyConstraint("schedule_id", "due_at"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("scheduled_sends")
    with op.batch_alter_table("scheduled_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_scheduled_messages_due")
        batch_op.drop_index(batch_op.f("ix_scheduled_messages_conversation_id"))
    op.drop_table("scheduled_messages")
