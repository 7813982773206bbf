"""``agents.hardware_details``, the hardware an agent reports (JSON).

KITT keeps it as JSON text; by the reference's rule for JSON
columns it is JSONB on PostgreSQL (and TEXT on SQLite).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from karr_db.migrations import ops

revision: str = "0022"
down_revision: str | None = "0021"

JSON = sa.Text().with_variant(postgresql.JSONB(), "postgresql")

contract = ops.RevisionContract(
    reference_schema_version=5, columns=(ops.Column("agents", "hardware_details"),)
)


def upgrade() -> None:
    op.add_column(
        "agents",
        sa.Column(
            "hardware_details",
            JSON,
            nullable=True,
            comment="Hardware the agent reported (JSON object)",
        ),
    )
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
