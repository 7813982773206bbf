"""``agents.cpu_arch`` (``amd64``, ``arm64``)."""

import sqlalchemy as sa

from karr_db.migrations import frozen, ops

revision: str = "0026"
down_revision: str | None = "0025"

contract = ops.RevisionContract(
    reference_schema_version=9, columns=(ops.Column("agents", "cpu_arch"),)
)


def upgrade() -> None:
    frozen.add_column(
        "agents", "cpu_arch", sa.Text(), "CPU architecture: amd64 or arm64", default="''"
    )
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
