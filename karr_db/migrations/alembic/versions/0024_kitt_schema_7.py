"""``quick_test_logs``, a quick test's output lines."""

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
    ops.upgrade_declared(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
