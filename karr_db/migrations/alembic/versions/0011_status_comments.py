"""Revision 0011, beyond the reference: the status columns' descriptions name every status.

One state machine now accepts every status the earlier system
wrote (campaigns ``draft`` and ``queued``, agents ``idle`` and ``running``), so
the column descriptions (PostgreSQL comments, and the generated schema
reference) list them. Comments only: no row and no type changes; SQLite keeps
no comments, so there it does nothing.
"""

import sqlalchemy as sa
from alembic import op

from karr_db.migrations import ops

revision: str = "0011"
down_revision: str | None = "0010"


#: (table, column, description); the models carry the same text.
COMMENTS = [
    (
        "web_campaigns",
        "status",
        "Current status: draft, pending, queued, running, completed, failed or cancelled",
    ),
    (
        "quick_tests",
        "status",
        "Current status: queued, claimed, running, completed, failed or cancelled",
    ),
    ("agents", "status", "Current status: online, offline, busy, idle or running"),
]


contract = ops.RevisionContract(reference_schema_version=None)


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table, column, comment in COMMENTS:
            op.alter_column(table, column, comment=comment, existing_type=sa.Text())
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
