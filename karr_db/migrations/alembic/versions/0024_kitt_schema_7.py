"""``quick_test_logs``, a quick test's output lines.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07

Written by hand. ``created_at`` is TIMESTAMPTZ on PostgreSQL by the
reference's rule for ``*_at`` columns.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from karr_db.migrations import ops

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")


def tables(metadata: sa.MetaData) -> list[sa.Table]:
    """The tables this revision adds, as they are at this revision (adoption reuses them)."""
    logs = sa.Table(
        "quick_test_logs",
        metadata,
        sa.Column(
            "id",
            sa.Integer(),
            nullable=False,
            comment="Line sequence number; readers page after it",
        ),
        sa.Column("test_id", sa.Text(), nullable=False, comment="The quick test"),
        sa.Column("line", sa.Text(), nullable=False, comment="One line of output"),
        sa.Column(
            "created_at",
            TIMESTAMP,
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=True,
            comment="When the line was stored (UTC)",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_quick_test_logs"),
        sa.ForeignKeyConstraint(
            ["test_id"], ["quick_tests.id"], name="fk_quick_test_logs_test_id_quick_tests"
        ),
        sqlite_autoincrement=True,
    )
    sa.Index("idx_quick_test_logs_test", logs.c.test_id)
    return [logs]


contract = ops.RevisionContract(reference_schema_version=7, tables=tables)


def upgrade() -> None:
    ops.create_declared(contract)
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
