"""Upgrade, inspect and check KARR databases from Python.

Everything goes through the Alembic scripts (``alembic/`` in a checkout,
``karr_db/_alembic`` in a wheel), so ``alembic upgrade head`` and these
functions behave the same: the same lock, the same legacy adoption.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL

from karr_db.db import make_engine, normalize_url
from karr_db.errors import SchemaError
from karr_db.migrations import timestamps
from karr_db.migrations.runner import CONTEXT_OPTIONS, migration_transaction
from karr_db.migrations.scripts import (
    KARR_TABLES,
    alembic_config,
    expected_schema_versions,
    reference_versions,
    revision_for_version,
    script_directory,
)
from karr_db.migrations.state import DatabaseKind, DatabaseState, read_state
from karr_db.models import Base

__all__ = [
    "DatabaseKind",
    "DatabaseStatus",
    "Finding",
    "TimestampRepair",
    "UpgradeReport",
    "check",
    "repair_timestamps",
    "status",
    "upgrade",
    "upgrade_sql",
]

Database = str | URL | Engine


class DatabaseStatus(BaseModel):
    """Where a database stands relative to this release's migrations."""

    model_config = ConfigDict(frozen=True)

    url: str  # password masked
    dialect: str
    kind: DatabaseKind
    # Two numbers, two meanings: ``alembic_revision`` is karr_db's migration
    # (0001, 0002, ... including its own revisions beyond the reference);
    # ``schema_version`` is the newest *reference* schema version recorded (1, 2).
    alembic_revision: str | None
    schema_version: int | None
    head_revision: str
    head_schema_version: int  # the reference version the head revision implements
    pending: list[str]  # revisions ``upgrade`` would apply, oldest first
    needs_adoption: bool
    tables: list[str]
    row_counts: dict[str, int] = {}  # rows per KARR table, when asked for


class Finding(BaseModel):
    """One problem ``check`` found."""

    model_config = ConfigDict(frozen=True)

    kind: str  # "state", "pending", "drift", "bridge"
    message: str


class UpgradeReport(BaseModel):
    """What an upgrade did."""

    model_config = ConfigDict(frozen=True)

    adopted: bool
    from_revision: str | None
    to_revision: str | None
    applied: list[str]
    # Timestamps (revision 0006 and adoption): the zone naive local times were
    # read in, how many were, and rows rewritten into canonical text per column.
    legacy_timezone: str | None = None
    timestamps_interpreted: int = 0
    timestamps_rewritten: dict[str, int] = {}
    notes: list[str] = []

    #: The schema_version the database was at before (a legacy one has no revision).
    from_schema_version: int | None = None


class TimestampRepair(BaseModel):
    """What :func:`repair_timestamps` did."""

    model_config = ConfigDict(frozen=True)

    legacy_timezone: str  # the zone naive local times were read in
    interpreted: int  # naive local values read in that zone
    rewritten: dict[str, int]  # rows rewritten per ``table.column``
    unreadable: dict[str, int]  # rows left alone: not a timestamp at all
    notes: list[str] = []


@contextmanager
def _engine(database: Database) -> Iterator[Engine]:
    if isinstance(database, Engine):
        yield database
        return
    engine = make_engine(database, poolclass=sa.pool.NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


def _pending(state: DatabaseState, script: ScriptDirectory) -> list[str]:
    if state.kind in (DatabaseKind.NEWER, DatabaseKind.UNVERSIONED):
        return []
    base: str | None = state.alembic_revision
    if state.kind is DatabaseKind.LEGACY and state.schema_version is not None:
        base = revision_for_version(state.schema_version, script)
    revisions = script.iterate_revisions("heads", base or "base")
    return [rev.revision for rev in reversed(list(revisions))]


def _status(
    connection: Connection, script: ScriptDirectory, *, row_counts: bool = False
) -> DatabaseStatus:
    state = read_state(connection, script)
    counts = (
        {
            name: int(
                connection.execute(
                    sa.select(sa.func.count()).select_from(sa.table(name))
                ).scalar_one()
            )
            for name in state.tables
        }
        if row_counts and state.kind in (DatabaseKind.MANAGED, DatabaseKind.LEGACY)
        else {}
    )
    return DatabaseStatus(
        url=connection.engine.url.render_as_string(hide_password=True),
        dialect=connection.dialect.name,
        kind=state.kind,
        alembic_revision=state.alembic_revision,
        schema_version=state.schema_version,
        head_revision=state.head_revision,
        head_schema_version=state.head_version,
        pending=_pending(state, script),
        needs_adoption=state.kind is DatabaseKind.LEGACY,
        tables=list(state.tables),
        row_counts=counts,
    )


def status(database: Database, *, row_counts: bool = True) -> DatabaseStatus:
    """Report the database's revision, schema version, pending work and (unless
    ``row_counts=False``, which saves a COUNT per table) its rows per table;
    writes nothing."""
    with _engine(database) as engine, engine.connect() as connection:
        return _status(connection, script_directory(), row_counts=row_counts)


def upgrade(
    database: Database, revision: str = "head", *, legacy_timezone: str | None = None
) -> UpgradeReport:
    """Adopt the database if needed and migrate it to ``revision``.

    ``legacy_timezone`` (else ``$KARR_LEGACY_TIMEZONE``, else the zone the
    database records, else UTC) is the IANA zone in which the earlier system
    wrote its naive local times; a bad name is a ValidationError naming it.
    """
    zone = timestamps.resolve_zone(legacy_timezone)
    script = script_directory()
    with _engine(database) as engine:
        config = alembic_config()
        config.attributes["engine"] = engine
        config.attributes[timestamps.ATTR_OPTION] = zone
        command.upgrade(config, revision)
        # The state env.py read under the migration lock, so that concurrent
        # upgraders each report only what they applied themselves.
        seen: DatabaseState = config.attributes["karr_state"]
        with engine.connect() as connection:
            after = _status(connection, script)
    pending_then = _pending(seen, script)
    applied = [rev for rev in pending_then if rev not in after.pending]
    reports: list[timestamps.TimestampReport] = config.attributes.get("karr_timestamp_reports", [])
    total = timestamps.TimestampReport(zone=reports[0].zone) if reports else None
    for report in reports:
        assert total is not None
        total.add(report)
    return UpgradeReport(
        adopted=seen.kind is DatabaseKind.LEGACY,
        from_revision=seen.alembic_revision,
        to_revision=after.alembic_revision,
        applied=applied,
        legacy_timezone=total.zone if total else None,
        timestamps_interpreted=total.interpreted if total else 0,
        timestamps_rewritten=total.rewritten if total else {},
        notes=list(config.attributes.get("karr_timestamp_notes", [])),
        from_schema_version=seen.schema_version,
    )


def repair_timestamps(database: Database, *, legacy_timezone: str | None = None) -> TimestampRepair:
    """Rewrite every timestamp text not in the canonical form, in one transaction.

    For text an outside writer stored that the triggers of revision 0006 did
    not recognise (or stored before they existed). Naive local times are read
    in ``legacy_timezone`` (else ``$KARR_LEGACY_TIMEZONE``, else the zone the
    database records, else UTC); a zone given is also recorded for the
    triggers (and on PostgreSQL made the database's default TimeZone). Text
    that is no timestamp at all is left alone and counted as unreadable.
    """
    zone = timestamps.resolve_zone(legacy_timezone)
    script = script_directory()
    with (
        _engine(database) as engine,
        engine.connect() as connection,
        migration_transaction(connection),
    ):
        state = read_state(connection, script)
        if state.kind is not DatabaseKind.MANAGED:
            raise SchemaError(
                f"repair-timestamps needs a database managed by karr_db; this one is "
                f"{state.kind.value}: run upgrade first"
            )
        notes: list[str] = []
        applied = {
            rev.revision
            for rev in script.iterate_revisions(state.alembic_revision or "base", "base")
        }
        if zone is not None and timestamps.ZONE_REVISION in applied:
            notes = timestamps.record_zone(connection, zone, database_default=True)
        used = zone or timestamps.recorded_zone(connection) or ZoneInfo("UTC")
        report = timestamps.canonicalise(connection, used)
    return TimestampRepair(
        legacy_timezone=report.zone,
        interpreted=report.interpreted,
        rewritten=report.rewritten,
        unreadable=report.unreadable,
        notes=notes,
    )


def upgrade_sql(url: str | URL, revision: str = "head") -> str:
    """The DDL an upgrade from an empty database would run, for review by a DBA."""
    buffer = io.StringIO()
    config = alembic_config(normalize_url(url).render_as_string(hide_password=False))
    config.output_buffer = buffer
    command.upgrade(config, revision, sql=True)
    return buffer.getvalue()


def _include_name(name: str | None, type_: str, _parent: object) -> bool:
    return type_ != "table" or name in KARR_TABLES


def _include_object(dialect: str) -> Any:
    """Leave out what the models create on another dialect only (``Index.ddl_if``),
    which Alembic's comparison does not know about."""

    def include(item: object, _name: str | None, _type: str, reflected: bool, _to: object) -> bool:
        only = getattr(item, "_ddl_if", None)
        return reflected or only is None or only.dialect in (None, dialect)

    return include


def check(database: Database) -> list[Finding]:
    """Compare the live schema with the models and ``schema_version`` with ``alembic_version``."""
    script = script_directory()
    findings: list[Finding] = []
    with _engine(database) as engine, engine.connect() as connection:
        state = _status(connection, script)
        if state.kind is not DatabaseKind.MANAGED:
            findings.append(Finding(kind="state", message=_state_message(state)))
            return findings
        if state.pending:
            findings.append(
                Finding(kind="pending", message=f"pending revisions: {', '.join(state.pending)}")
            )
        findings += _bridge_findings(connection, state, script)
        context = MigrationContext.configure(
            connection,
            opts={
                **CONTEXT_OPTIONS,
                "include_name": _include_name,
                "include_object": _include_object(connection.dialect.name),
            },
        )
        for diff in compare_metadata(context, Base.metadata):
            findings.append(Finding(kind="drift", message=_describe(diff)))
        findings += _sqlite_autoincrement_findings(connection)
        findings += _trigger_findings(connection, script, state.alembic_revision)
        findings += _timestamp_findings(connection, script, state.alembic_revision)
    return findings


def _state_message(state: DatabaseStatus) -> str:
    return {
        DatabaseKind.EMPTY: "database is empty: run upgrade",
        DatabaseKind.LEGACY: (
            f"legacy database at schema_version {state.schema_version}: run upgrade to adopt it"
        ),
        DatabaseKind.NEWER: (
            f"database is at {state.alembic_revision or state.schema_version}, newer than "
            f"this release's {state.head_revision}"
        ),
        DatabaseKind.UNVERSIONED: "KARR tables without version information",
        DatabaseKind.UNADOPTABLE: (
            f"database is at the earlier system's schema {state.schema_version}; only its "
            f"schemas {' and '.join(map(str, reference_versions()))} can be adopted"
        ),
    }.get(state.kind, state.kind.value)


def _bridge_findings(
    connection: Connection, state: DatabaseStatus, script: ScriptDirectory
) -> list[Finding]:
    """``schema_version`` must hold exactly the reference versions that the
    revisions up to ``alembic_version`` record (1 and 2 at head)."""
    assert state.alembic_revision is not None
    expected = expected_schema_versions(state.alembic_revision, script)
    found = sorted(
        int(v) for v in connection.execute(sa.text("SELECT version FROM schema_version")).scalars()
    )
    if found == expected:
        return []
    unexpected = sorted(set(found) - set(expected))
    missing = sorted(set(expected) - set(found))
    parts = [
        f"schema_version says {state.schema_version} but alembic_version is "
        f"{state.alembic_revision}, which implements reference schema "
        f"{expected[-1] if expected else 'none'} (rows {expected})"
    ]
    if missing:
        parts.append(f"missing rows {missing}")
    if unexpected:
        parts.append(
            f"rows {unexpected} karr_db does not write (the earlier system's later "
            "migrations may have run here)"
        )
    return [Finding(kind="bridge", message="; ".join(parts))]


def _describe(diff: Any) -> str:
    """Word one of Alembic's comparison results for a person."""
    if isinstance(diff, list):  # column modifications come grouped
        return "; ".join(_describe(d) for d in diff)
    action = diff[0]
    verb, _, what = action.partition("_")  # "add_index" -> ("add", "index")
    if verb == "modify":
        _, _, table, column, _, database, model = diff
        return f"{table}.{column}: {what} is {database!r} in the database, {model!r} in the models"
    present = (
        "missing from the database" if verb == "add" else "in the database but not in the models"
    )
    if action in ("add_column", "remove_column"):
        return f"column {diff[2]}.{diff[3].name} {present}"
    item = diff[1]
    table = getattr(getattr(item, "table", None), "name", None)
    name = getattr(item, "name", None) or str(item)
    where = f" on {table}" if table and table != name else ""
    return f"{what.replace('_', ' ')} {name}{where} {present}"


def _trigger_findings(
    connection: Connection, script: ScriptDirectory, revision: str | None
) -> list[Finding]:
    """Alembic does not compare triggers: each revision that installs some names
    them in ``<DIALECT>_TRIGGERS`` and they must all exist."""
    dialect = connection.dialect.name
    expected: list[str] = []
    for rev in script.iterate_revisions(revision or "base", "base"):
        expected += getattr(rev.module, f"{dialect.upper()}_TRIGGERS", ())
    if not expected:
        return []
    if dialect == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    else:
        # A disabled trigger guards nothing, so it counts as missing.
        query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D'"
    present = set(connection.exec_driver_sql(query).scalars())
    return [
        Finding(kind="drift", message=f"trigger {name} missing from the database (or disabled)")
        for name in expected
        if name not in present
    ]


def _sqlite_autoincrement_findings(connection: Connection) -> list[Finding]:
    """Alembic does not compare AUTOINCREMENT; the reference requires it."""
    if connection.dialect.name != "sqlite":
        return []
    findings = []
    for table in Base.metadata.sorted_tables:
        if not table.kwargs.get("sqlite_autoincrement"):
            continue
        sql = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table.name,)
        ).scalar()
        if sql is not None and "AUTOINCREMENT" not in sql.upper():
            findings.append(
                Finding(
                    kind="drift",
                    message=f"{table.name}.id is not INTEGER PRIMARY KEY AUTOINCREMENT",
                )
            )
    return findings


def _timestamp_findings(
    connection: Connection, script: ScriptDirectory, revision: str | None
) -> list[Finding]:
    """Timestamp text outside the canonical form orders and compares wrongly; the
    triggers of revision 0006 cannot read local times without the zone table."""
    applied = {rev.revision for rev in script.iterate_revisions(revision or "base", "base")}
    missing = (
        [
            Finding(
                kind="drift",
                message=f"table {timestamps.ZONE_TABLE} missing from the database (or empty): "
                "run `karr-db repair-timestamps --legacy-timezone ZONE`",
            )
        ]
        if timestamps.ZONE_REVISION in applied and timestamps.recorded_zone(connection) is None
        else []
    )
    return missing + [
        Finding(
            kind="timestamps",
            message=(
                f"{column}: {count} value(s) not in the canonical form "
                "'YYYY-MM-DD HH:MM:SS.ffffff+00:00'; run `karr-db repair-timestamps`"
            ),
        )
        for column, count in timestamps.nonconforming(connection).items()
    ]
