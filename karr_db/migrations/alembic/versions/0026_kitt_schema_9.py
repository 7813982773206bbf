"""``agents.cpu_arch`` (``amd64``, ``arm64``)."""

import sqlalchemy as sa
from alembic import op

from karr_db.migrations import ops

revision: str = "0026"
down_revision: str | None = "0025"

contract = ops.RevisionContract(
    reference_schema_version=9, columns=(ops.Column("agents", "cpu_arch"),)
)


def upgrade() -> None:
    op.add_column(
        "agents",
        sa.Column(
            "cpu_arch",
            sa.Text(),
            server_default=sa.text("''"),
            nullable=True,
            comment="CPU architecture: amd64 or arm64",
        ),
    )
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
