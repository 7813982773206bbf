"""Revision 0009, beyond the reference: an index in the order the latest runs are paged.

PostgreSQL only. ``list_runs`` pages runs by ``timestamp DESC
NULLS LAST, id DESC``; revision 0004's ascending ``(model, engine, timestamp)``
index walked backwards gives ``NULLS FIRST``, so PostgreSQL read every run of a
model and engine and sorted them (docs/performance.md). This index has the
query's own order: the first 51 entries are the page. SQLite needs none (its
NULLs sort lowest, so ``DESC`` is ``NULLS LAST`` and the ascending index
serves the page; it also refuses ``NULLS LAST`` in an index).
"""

import sqlalchemy as sa

from karr_db.migrations import ops

revision: str = "0009"
down_revision: str | None = "0008"


#: PostgreSQL only: SQLite's ascending index already serves the page (see above).
contract = ops.RevisionContract(
    reference_schema_version=None,
    indexes=(
        ops.Index(
            "idx_runs_model_engine_latest",
            "runs",
            (
                "model",
                "engine",
                sa.column("timestamp").desc().nulls_last(),
                sa.column("id").desc(),
            ),
            dialects=("postgresql",),
        ),
    ),
)


def upgrade() -> None:
    ops.upgrade_declared(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
