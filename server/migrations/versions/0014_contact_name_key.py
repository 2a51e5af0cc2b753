"""contacts: the name as a search compares it, so "joao" finds "João"

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 06:00:00

``contacts.name_key`` is the name in lower case, accents dropped, punctuation as spaces, kept by
the model whenever a name is set (``server.schema.contacts.Contact``). The names already stored
get theirs here, in batches; nothing else changes, and downgrading drops only the column.
"""

import re
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def _key(name: str) -> str:
    """``flows.text.normalize`` as of this revision (a migration keeps its own copy: the
    function may change later, what this step wrote may not)."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return _NOT_WORD.sub(" ", bare).strip()[:200]


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("contacts", sa.Column("name_key", sa.String(length=200), nullable=True))
    contacts = sa.table("contacts", sa.column("id", sa.Integer()), sa.column("name", sa.String()),
                        sa.column("name_key", sa.String()))
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(sa.select(contacts.c.id, contacts.c.name)
                            .where(contacts.c.id > last, contacts.c.name.is_not(None))
                            .order_by(contacts.c.id).limit(BATCH)).all()
        if not rows:
            break
        bind.execute(contacts.update().where(contacts.c.id == sa.bindparam("cid"))
                     .values(name_key=sa.bindparam("key")),
                     [{"cid": i, "key": _key(n)} for i, n in rows])
        last = rows[-1][0]


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("contacts") as batch_op:  # SQLite rebuilds the table
        batch_op.drop_column("name_key")
