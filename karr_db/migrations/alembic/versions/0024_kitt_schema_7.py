"""``quick_test_logs``, a quick test's output lines.

``created_at`` is TIMESTAMPTZ on PostgreSQL by the
reference's rule for ``*_at`` columns.
"""

import sqlalchemy as sa

from karr_db.migrations import frozen, ops

revision: str = "0024"
down_revision: str | None = "0023"


def tables(metadata: sa.MetaData) -> list[sa.Table]:
    """The tables this revision adds, as they are at this revision (adoption reuses them)."""
    return [
        frozen.log_table(metadata, "quick_test_logs", "test_id", "quick_tests", "The quick test")
    ]


contract = ops.RevisionContract(reference_schema_version=7, tables=tables)


def upgrade() -> None:
    ops.create_declared(contract)
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
