"""Adopting databases written by the earlier, hand-rolled migration system.

Such a database has ``schema_version`` rows but no ``alembic_version``. It is
brought to the reference schema of its version (index and constraint names,
nullability, defaults, and on PostgreSQL the column types) without losing or
altering a row, then stamped at the matching revision so that Alembic carries
on from there, and every run is queued for derivation
(:mod:`karr_db.migrations.pending`): the rows a save would derive from each
document are written by the separate step ``upgrade`` runs after the
revisions, so adoption imports none of the code that derives or saves.
Everything happens inside the caller's migration transaction:
a value that cannot be converted stops adoption with an error naming the
table, column and row, and nothing is changed.

The target of version N is what revisions 1..N create (each revision's contract
describes its tables as ``sa.Table`` objects), not the models, which move on
with later revisions; what the later revisions' contracts declare is removed
first (:mod:`.clear`) and those revisions run again. The work is split by
concern: :mod:`.clear`, :mod:`.sqlite` (rebuild), :mod:`.postgresql` (alter in
place), with what both share in :mod:`._common`.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from karr_db.errors import AdoptionError
from karr_db.migrations import pending, timestamps
from karr_db.migrations.adopt import lineage
from karr_db.migrations.adopt.clear import clear_karr_additions
from karr_db.migrations.adopt.postgresql import TEXT_TYPES, conform_postgresql, pg_columns
from karr_db.migrations.adopt.sqlite import conform_sqlite
from karr_db.migrations.scripts import contracts, reference_tables, revision_for_version
from karr_db.models import Base
from karr_db.models.types import UTCDateTime

__all__ = ["adopt"]


def adopt(
    connection: Connection,
    version: int,
    script: ScriptDirectory,
    *,
    legacy_timezone: ZoneInfo | None = None,
) -> timestamps.TimestampReport:
    """Conform a legacy database at ``version`` to the reference and stamp it.

    Naive local times are read in ``legacy_timezone`` (else the zone the
    database records, else UTC); what that did is returned. KITT's later
    schemas (3..11) take two legs (:mod:`.lineage`).
    """
    try:
        revision = revision_for_version(version, script)
    except KeyError:
        raise AdoptionError(
            f"schema_version {version} was never written by the earlier system"
        ) from None
    later_schema = version > lineage.REFERENCE_VERSION
    chain = contracts(script)
    lineage.refuse_incomplete(connection, version, script)
    if later_schema:
        tables = lineage.lineage_tables(
            reference_tables(lineage.REFERENCE_VERSION, script), version, script
        )
        # KITT's revisions up to ``version`` are the database's own; karr_db's run
        # (again) in the two legs.
        start = list(chain).index(revision_for_version(lineage.REFERENCE_VERSION, script)) + 1
        later = [
            c
            for c in list(chain.values())[start:]
            if c.reference_schema_version is None or c.reference_schema_version > version
        ]
    else:
        tables = reference_tables(version, script)
        later = list(chain.values())[list(chain).index(revision) + 1 :]
    zone = legacy_timezone or timestamps.recorded_zone(connection) or ZoneInfo("UTC")
    if sa.inspect(connection).has_table("alembic_version"):
        # A karr_db database KITT migrated (see readiness.read_state): its stamp no longer holds.
        connection.exec_driver_sql("DELETE FROM alembic_version")
    clear_karr_additions(connection, tables, later)
    if connection.dialect.name == "sqlite":
        conform_sqlite(connection, tables)
        report = _canonical_timestamps(connection, tables, zone)
    else:
        report = _canonical_timestamps(connection, tables, zone)
        conform_postgresql(connection, tables)
    pending.mark(connection)
    migration = MigrationContext.configure(connection)
    if later_schema:
        migration.stamp(script, revision_for_version(lineage.REFERENCE_VERSION, script))
        lineage.run_own_revisions(connection, version, script, zone)
    migration.stamp(script, revision)
    return report


def _canonical_timestamps(
    connection: Connection, tables: list[sa.Table], zone: ZoneInfo
) -> timestamps.TimestampReport:
    """Rewrite the earlier system's timestamp text into karr_db's canonical form.

    SQLite: after the rebuild (whose value check has then already refused
    what is no timestamp at all), on the reference tables. PostgreSQL: before
    the columns become TIMESTAMPTZ, on the TEXT ones: the naive local values
    only, since the conversion casts the rest in a UTC session (offsets kept,
    naive space-separated text as UTC), which is the rule already; blanks stay
    for the conversion to make NULL (NOT NULL is still there).
    """
    names = {t.name for t in tables}
    columns = [(t, c) for t, c in _all_timestamp_columns() if t in names]
    if connection.dialect.name == "postgresql":
        columns = [
            (t, c)
            for t, c in columns
            if (live := pg_columns(connection, t).get(c)) is not None
            and live.type.startswith(TEXT_TYPES)
        ]
    postgresql = connection.dialect.name == "postgresql"
    return timestamps.canonicalise(
        connection, zone, columns, keep_blank=postgresql, local_only=postgresql
    )


def _all_timestamp_columns() -> list[tuple[str, str]]:
    return [
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, UTCDateTime)
    ]
