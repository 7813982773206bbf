"""Revision 0009, beyond the reference: an index in the order the latest runs are paged.

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-01

Written by hand; PostgreSQL only. ``list_runs`` pages runs by ``timestamp DESC
NULLS LAST, id DESC``; revision 0004's ascending ``(model, engine, timestamp)``
index walked backwards gives ``NULLS FIRST``, so PostgreSQL read every run of a
model and engine and sorted them (docs/performance.md). This index has the
query's own order: the first 51 entries are the page. SQLite needs none (its
NULLs sort lowest, so ``DESC`` is ``NULLS LAST`` and the ascending index
serves the page; it also refuses ``NULLS LAST`` in an index).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from karr_db.migrations.runner import record_schema_version, refuse_downgrade

revision: str = "0009"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Beyond the reference: records nothing in ``schema_version`` (``alembic_version`` tracks it).
karr_schema_version: int | None = None


def tables(metadata: sa.MetaData) -> list[sa.Table]:
    """This revision adds no tables."""
    return []


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "idx_runs_model_engine_latest",
            "runs",
            [
                sa.column("model"),
                sa.column("engine"),
                sa.column("timestamp").desc().nulls_last(),
                sa.column("id").desc(),
            ],
        )
    record_schema_version(karr_schema_version)


def downgrade() -> None:
    refuse_downgrade()
