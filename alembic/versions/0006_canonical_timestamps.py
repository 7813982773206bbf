"""Revision 0006, beyond the reference: every stored time in one canonical text form.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Written by hand. The earlier system wrote local ``T``-separated times and
SQLite's UTC ``datetime('now')`` text into the same columns, and its code may
keep writing them during a switch-over; such text sorts wrongly against
karr_db's fixed-width UTC text, so paging, ranges and staleness went wrong
silently. This revision (see ``karr_db/migrations/timestamps.py``):

* creates ``karr_legacy_timezone``, the UTC offsets of the zone the earlier
  system's naive local times are in (``--legacy-timezone``, default UTC);
* on SQLite, installs AFTER INSERT/UPDATE triggers on every table with a
  timestamp that rewrite any other form into canonical text in the same
  statement (the indexes keep working, no reader changes), and lets revision
  0003's ``events_no_update`` pass that one rewrite;
* on PostgreSQL, installs the same rule as a BEFORE trigger on
  ``agents.last_heartbeat`` (the one timestamp kept as TEXT there); the
  TIMESTAMPTZ columns parse text themselves;
* rewrites what is already stored in another form.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from karr_db.migrations import timestamps
from karr_db.migrations.guards import SqliteTrigger
from karr_db.migrations.runner import record_schema_version, refuse_downgrade

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Beyond the reference: records nothing in ``schema_version`` (``alembic_version`` tracks it).
karr_schema_version: int | None = None

#: Names ``check`` can look for (``sqlite_master`` / ``pg_trigger``).
SQLITE_TRIGGERS = timestamps.sqlite_trigger_names()
POSTGRESQL_TRIGGERS = timestamps.PG_TRIGGERS

#: 0003's append-only guard as this revision recreates it (``check`` compares it).
SQLITE_GUARDS = [
    SqliteTrigger("events_no_update", "events", timestamps.sqlite_events_no_update_sql().strip())
]


def tables(metadata: sa.MetaData) -> list[sa.Table]:
    """This revision adds no table of the models (``karr_legacy_timezone`` is its own)."""
    return []


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    attributes = context.config.attributes
    zone, explicit = timestamps.zone_for_revision(
        None if context.is_offline_mode() else op.get_bind(), attributes
    )
    if context.is_offline_mode():
        op.execute(timestamps.ZONE_TABLE_DDL)
        zone_table = sa.table(
            timestamps.ZONE_TABLE,
            sa.column("local_start", sa.Text),
            sa.column("utc_offset", sa.Integer),
            sa.column("zone", sa.Text),
        )
        op.bulk_insert(zone_table, timestamps.zone_rows(zone))
        if dialect == "postgresql":
            op.execute(f"GRANT SELECT ON {timestamps.ZONE_TABLE} TO PUBLIC")
    else:
        notes = timestamps.record_zone(op.get_bind(), zone, database_default=explicit)
        attributes.setdefault("karr_timestamp_notes", []).extend(notes)
    if dialect == "postgresql":
        for statement in timestamps.postgresql_sql():
            op.execute(statement.strip())
    else:
        op.execute("DROP TRIGGER IF EXISTS events_no_update")
        op.execute(timestamps.sqlite_events_no_update_sql())
        for statement in timestamps.sqlite_trigger_sql():
            op.execute(statement)
    if not context.is_offline_mode():
        report = timestamps.canonicalise(op.get_bind(), zone)
        attributes.setdefault("karr_timestamp_reports", []).append(report)
    record_schema_version(karr_schema_version)


def downgrade() -> None:
    refuse_downgrade()
