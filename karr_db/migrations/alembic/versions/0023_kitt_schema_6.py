"""``quick_tests.command_id``, the command that dispatched a test."""

import sqlalchemy as sa

from karr_db.migrations import frozen, ops

revision: str = "0023"
down_revision: str | None = "0022"

contract = ops.RevisionContract(
    reference_schema_version=6, columns=(ops.Column("quick_tests", "command_id"),)
)


def upgrade() -> None:
    frozen.add_column(
        "quick_tests",
        "command_id",
        sa.Text(),
        "Id of the command that dispatched the test",
        default="''",
    )
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
