"""Revision 0029, beyond the reference: canonical timestamps in KITT's later tables,
and the description of ``agents.token``.

Revision 0006's rule for the timestamp columns of the tables
KITT's schemas 7..11 add (``quick_test_logs``, ``campaign_logs``,
``engine_profiles``, ``agent_engines``): on SQLite, the same AFTER INSERT/UPDATE
triggers, so that KITT's ``datetime('now')`` defaults and local ISO times are
stored in karr_db's canonical form (times outside years 1-9999 refused, as
revision 0013 does); on PostgreSQL, revision 0013's range triggers on their
TIMESTAMPTZ columns; on both dialects, the rows already stored
rewritten in the zone revision 0006 recorded. On PostgreSQL, the comment of
``agents.token`` says that it is empty now (KITT's schema 4 moved tokens to
``token_hash``). It is karr_db's own (records no schema version), so KITT's
revisions 0020..0028 stay exactly KITT's schemas, and it runs after adoption of
any of them.
"""

import sqlalchemy as sa
from alembic import op

from karr_db.migrations import ops

revision: str = "0029"
down_revision: str | None = "0028"

contract = ops.RevisionContract(
    reference_schema_version=None, triggers=ops.lineage_timestamp_triggers()
)


TOKEN_COMMENT = "Empty: the token's SHA-256 digest is in token_hash"


def upgrade() -> None:
    ops.install_lineage_timestamps()
    if op.get_context().dialect.name == "postgresql":
        op.alter_column("agents", "token", comment=TOKEN_COMMENT, existing_type=sa.Text())
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
