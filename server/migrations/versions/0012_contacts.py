"""contacts: the contact filter's indexes, and the record of contacts merged

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 20:00:00

The filter (``server.services.contact_search``) reads a tag's or a field's contacts from
(tag_id, contact_id) and (field_id, contact_id), covering, instead of the x_id index plus a
row each; a field's contacts of one value from (field_id, the value's first 100 characters in
lower case: PostgreSQL refuses an index row over ~2.7 kB, and a value may have 1,000);
conversations by instance and by the customer's last message.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.drop_index("ix_contact_tags_tag_id", "contact_tags")
    op.create_index("ix_contact_tags_tag_contact", "contact_tags", ["tag_id", "contact_id"])
    op.drop_index("ix_contact_fields_field_id", "contact_fields")
    op.create_index("ix_contact_fields_field_contact", "contact_fields",
                    ["field_id", "contact_id"])
    op.create_index("ix_contact_fields_field_value", "contact_fields",
                    ["field_id", sa.text("substr(lower(value), 1, 100)")])
    op.create_index("ix_conversations_instance_contact", "conversations",
                    ["instance_id", "contact_id"])
    op.create_index("ix_conversations_last_inbound", "conversations",
                    ["last_inbound_at", "contact_id"])
    op.create_table(
        "contact_merges",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contact_id", sa.Integer(), sa.ForeignKey("contacts.id"), nullable=False),
        sa.Column("merged_id", sa.Integer(), nullable=False),
        sa.Column("merged_name", sa.String(200), nullable=True),
        sa.Column("merged_phone", sa.String(32), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("by_user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("by_name", sa.String(120), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False))
    op.create_index("ix_contact_merges_contact_id", "contact_merges", ["contact_id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_contact_merges_contact_id", "contact_merges")
    op.drop_table("contact_merges")
    op.drop_index("ix_conversations_last_inbound", "conversations")
    op.drop_index("ix_conversations_instance_contact", "conversations")
    op.drop_index("ix_contact_fields_field_value", "contact_fields")
    op.drop_index("ix_contact_fields_field_contact", "contact_fields")
    op.create_index("ix_contact_fields_field_id", "contact_fields", ["field_id"])
    op.drop_index("ix_contact_tags_tag_contact", "contact_tags")
    op.create_index("ix_contact_tags_tag_id", "contact_tags", ["tag_id"])
