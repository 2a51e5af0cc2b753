"""inbox: notes, canned responses, per-agent reads, who wrote a message, the listing's indexes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 20:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("conversations.id"),
                  nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("author", sa.String(120), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        _at("created_at", False))
    op.create_index("ix_notes_conversation_id", "notes", ["conversation_id"])
    op.create_table(
        "canned_responses",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("shortcut", sa.String(32), nullable=False, unique=True),
        sa.Column("text", sa.Text(), nullable=False),
        _at("created_at", False), _at("updated_at", False))
    op.create_table(
        "conversation_reads",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("conversations.id"),
                  primary_key=True),
        sa.Column("last_read_message_id", sa.Integer(), nullable=False),
        _at("read_at", False))
    op.create_index("ix_conversation_reads_conversation_id", "conversation_reads",
                    ["conversation_id"])
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_messages_user_id", "users", ["user_id"], ["id"])
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(_at("updated_at"))
    op.create_index("ix_conversations_activity", "conversations",
                    [sa.text("coalesce(last_inbound_at, created_at)"), "id"])
    op.create_index("ix_conversations_updated_at", "conversations", ["updated_at"])
    op.create_index("ix_messages_conversation_id", "messages", ["conversation_id", "id"])
    op.create_index("ix_message_events_at", "message_events", ["at"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_message_events_at", "message_events")
    op.drop_index("ix_messages_conversation_id", "messages")
    op.drop_index("ix_conversations_updated_at", "conversations")
    op.drop_index("ix_conversations_activity", "conversations")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("updated_at")
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("fk_messages_user_id", type_="foreignkey")
        batch.drop_column("user_id")
    op.drop_index("ix_conversation_reads_conversation_id", "conversation_reads")
    op.drop_table("conversation_reads")
    op.drop_table("canned_responses")
    op.drop_index("ix_notes_conversation_id", "notes")
    op.drop_table("notes")
