"""``campaign_logs``, a campaign's output lines."""

import sqlalchemy as sa

from karr_db.migrations import frozen, ops

revision: str = "0027"
down_revision: str | None = "0026"


def tables(metadata: sa.MetaData) -> list[sa.Table]:
    """The tables this revision adds, as they are at this revision (adoption reuses them)."""
    return [
        frozen.log_table(metadata, "campaign_logs", "campaign_id", "web_campaigns", "The campaign")
    ]


contract = ops.RevisionContract(reference_schema_version=10, tables=tables)


def upgrade() -> None:
    ops.upgrade_declared(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
