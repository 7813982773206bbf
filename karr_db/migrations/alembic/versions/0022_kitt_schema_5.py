"""``agents.hardware_details``, the hardware an agent reports (JSON).

KITT keeps it as JSON text; by the reference's rule for JSON
columns it is JSONB on PostgreSQL (and TEXT on SQLite).
"""

from karr_db.migrations import frozen, ops

revision: str = "0022"
down_revision: str | None = "0021"


contract = ops.RevisionContract(
    reference_schema_version=5, columns=(ops.Column("agents", "hardware_details"),)
)


def upgrade() -> None:
    frozen.add_column(
        "agents", "hardware_details", frozen.JSON, "Hardware the agent reported (JSON object)"
    )
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
