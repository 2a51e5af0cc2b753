"""conversation engine: flows, sessions, tags and custom fields, users and teams, handoff

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 17:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("status = 'open'")


def _at(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("color", sa.String(16), nullable=True),
        _at("created_at", False))
    op.create_table(
        "contact_tags",
        sa.Column("contact_id", sa.Integer(), sa.ForeignKey("contacts.id"), primary_key=True),
        sa.Column("tag_id", sa.Integer(), sa.ForeignKey("tags.id"), primary_key=True),
        _at("created_at", False))
    op.create_index("ix_contact_tags_tag_id", "contact_tags", ["tag_id"])
    op.create_table(
        "custom_fields",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(120), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=True),
        _at("created_at", False))
    op.create_table(
        "contact_fields",
        sa.Column("contact_id", sa.Integer(), sa.ForeignKey("contacts.id"), primary_key=True),
        sa.Column("field_id", sa.Integer(), sa.ForeignKey("custom_fields.id"),
                  primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        _at("updated_at", False))
    op.create_index("ix_contact_fields_field_id", "contact_fields", ["field_id"])
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=True),
        _at("created_at", False))
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("hours", sa.JSON(), nullable=True),
        sa.Column("handoff_message", sa.Text(), nullable=True),
        sa.Column("closed_message", sa.Text(), nullable=True),
        sa.Column("closed_window_minutes", sa.Integer(), nullable=False),
        _at("created_at", False))
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), primary_key=True),
        _at("last_assigned_at"))
    op.create_index("ix_team_members_user_id", "team_members", ["user_id"])
    op.create_table(
        "flows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _at("created_at", False), _at("updated_at", False))
    op.create_table(
        "chat_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("conversations.id"),
                  nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("flow_key", sa.String(64), nullable=True),
        sa.Column("state", sa.JSON(), nullable=True),
        sa.Column("pending", sa.JSON(), nullable=True),
        _at("timer_at"),
        sa.Column("timer_token", sa.String(32), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=True),
        _at("started_at", False), _at("last_activity_at", False), _at("closed_at"),
        sa.Column("closed_by", sa.String(16), nullable=True))
    op.create_index("ix_chat_sessions_conversation_id", "chat_sessions", ["conversation_id"])
    op.create_index("uq_open_session", "chat_sessions", ["conversation_id"], unique=True,
                    postgresql_where=_OPEN, sqlite_where=_OPEN)
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False,
                                   server_default="open"))
        batch.add_column(sa.Column("team_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch.add_column(_at("handed_off_at"))
        batch.add_column(_at("agent_replied_at"))
        batch.add_column(_at("closed_notice_at"))
        batch.create_foreign_key("fk_conversations_team_id", "teams", ["team_id"], ["id"])
        batch.create_foreign_key("fk_conversations_assignee_id", "users", ["assignee_id"],
                                 ["id"])
        batch.create_index("ix_conversations_team_id", ["team_id"])
        batch.create_index("ix_conversations_assignee_id", ["assignee_id"])
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("transcript", sa.Text(), nullable=True))
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("default_flow", sa.String(64), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("default_flow")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("transcript")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_assignee_id")
        batch.drop_index("ix_conversations_team_id")
        batch.drop_constraint("fk_conversations_assignee_id", type_="foreignkey")
        batch.drop_constraint("fk_conversations_team_id", type_="foreignkey")
        for col in ("closed_notice_at", "agent_replied_at", "handed_off_at", "assignee_id",
                    "team_id", "status"):
            batch.drop_column(col)
    op.drop_index("uq_open_session", "chat_sessions")
    op.drop_index("ix_chat_sessions_conversation_id", "chat_sessions")
    for table in ("chat_sessions", "flows", "team_members", "teams", "users", "contact_fields",
                  "custom_fields", "contact_tags", "tags"):
        op.drop_table(table)
