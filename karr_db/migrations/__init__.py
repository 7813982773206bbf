"""Upgrade, inspect and check KARR databases from Python.

Everything goes through the Alembic scripts (``karr_db/migrations/alembic``, in
a checkout and in a wheel), so ``alembic upgrade head`` and these
functions behave the same: the same lock, the same legacy adoption.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL

from karr_db.db import make_engine, normalize_url, sqlite_path
from karr_db.errors import (
    NewerSchemaError,
    NotReadyError,
    SchemaError,
    UnadoptableSchemaError,
    UnversionedDatabaseError,
)
from karr_db.migrations import timestamps
from karr_db.migrations.guards import declared_object_findings, guard_findings
from karr_db.migrations.scripts import (
    KARR_TABLES,
    alembic_config,
    contracts_upto,
    expected_schema_versions,
    reference_versions,
    revision_chain,
    revision_for_version,
    script_directory,
)
from karr_db.migrations.state import DatabaseKind, DatabaseState, read_state
from karr_db.models import Base

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

# Alembic is imported inside the functions that migrate, render or compare:
# the readiness check (``require_current``) that every reading command runs
# must not pay for it.

__all__ = [
    "DatabaseKind",
    "DatabaseStatus",
    "Finding",
    "TimestampRepair",
    "UpgradeReport",
    "UpgradeSQL",
    "check",
    "raise_unless_current",
    "repair_timestamps",
    "require_current",
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
    created: bool = False  # a new SQLite file was created
    backup: str | None = None  # the copy written before adopting a SQLite file


class UpgradeSQL(BaseModel):
    """What ``upgrade --sql`` renders for one database."""

    model_config = ConfigDict(frozen=True)

    kind: DatabaseKind  # the database's state when it was read ("empty" with from_empty)
    from_revision: str | None  # where the script starts (None: from an empty database)
    to_revision: str
    sql: str  # empty when there is nothing to do


class TimestampRepair(BaseModel):
    """What :func:`repair_timestamps` did."""

    model_config = ConfigDict(frozen=True)

    legacy_timezone: str  # the zone naive local times were read in
    interpreted: int  # naive local values read in that zone
    rewritten: dict[str, int]  # rows rewritten per ``table.column``
    unreadable: dict[str, int]  # rows left alone: not a timestamp at all
    notes: list[str] = []


@contextmanager
def _engine(database: Database, *, read_only: bool = False) -> Iterator[Engine]:
    if isinstance(database, Engine):
        yield database
        return
    engine = make_engine(database, poolclass=sa.pool.NullPool, read_only=read_only)
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
    writes nothing: a SQLite file is opened read-only, and one that does not
    exist is reported empty (what ``upgrade`` would create) without creating it."""
    url = None if isinstance(database, Engine) else normalize_url(database)
    path = None if url is None else sqlite_path(url)
    if url is not None and path is not None and not path.exists():
        chain = revision_chain()
        return DatabaseStatus(
            url=url.render_as_string(hide_password=True),
            dialect="sqlite",
            kind=DatabaseKind.EMPTY,
            alembic_revision=None,
            schema_version=None,
            head_revision=chain.head,
            head_schema_version=chain.reference_version_at(chain.head),
            pending=chain.after(None),
            needs_adoption=False,
            tables=[],
        )
    with _engine(database, read_only=True) as engine, engine.connect() as connection:
        return _status(connection, script_directory(), row_counts=row_counts)


def raise_unless_current(state: DatabaseState) -> None:
    """The layer's error, with the next step, for a database this release cannot
    use as it stands: empty, legacy (not yet adopted), behind, or newer."""
    kind = state.kind
    if kind is DatabaseKind.MANAGED and state.alembic_revision == state.head_revision:
        return
    if kind is DatabaseKind.MANAGED:
        assert state.alembic_revision is not None
        pending = revision_chain().after(state.alembic_revision)
        raise NotReadyError(
            "behind",
            f"the database is at revision {state.alembic_revision}, behind this release's "
            f"{state.head_revision} ({', '.join(pending)} pending): run `karr-db upgrade` "
            "(or karr_db.migrations.upgrade)",
        )
    if kind is DatabaseKind.NEWER:
        raise NewerSchemaError(state.found, state.supported)
    if kind is DatabaseKind.EMPTY:
        raise NotReadyError(
            "empty",
            "the database is empty: run `karr-db upgrade` (or karr_db.migrations.upgrade) "
            "to create the schema",
        )
    if kind is DatabaseKind.LEGACY:
        raise NotReadyError(
            "legacy",
            f"the database is the earlier system's, at schema_version {state.schema_version}, "
            "not yet adopted: run `karr-db upgrade` to adopt it (every row is kept; a SQLite "
            "file is backed up first)",
        )
    if kind is DatabaseKind.UNADOPTABLE:
        assert state.schema_version is not None
        raise UnadoptableSchemaError(state.schema_version, revision_chain().reference_versions())
    raise UnversionedDatabaseError(list(state.tables))


def require_current(database: Database) -> DatabaseState:
    """Refuse a database that is not at this release's head (see
    :func:`raise_unless_current`), as Optuna's and MLflow's stores do.

    Reads the version tables only: no row is counted and Alembic is not
    imported, so it is cheap enough to run before every unit of work.
    """
    with _engine(database, read_only=True) as engine, engine.connect() as connection:
        state = read_state(connection)
    raise_unless_current(state)
    return state


def upgrade(
    database: Database,
    revision: str = "head",
    *,
    backup: bool = True,
    legacy_timezone: str | None = None,
) -> UpgradeReport:
    """Adopt the database if needed and migrate it to ``revision``.

    ``legacy_timezone`` (else ``$KARR_LEGACY_TIMEZONE``, else the zone the
    database records, else UTC) is the IANA zone in which the earlier system
    wrote its naive local times; a bad name is a ValidationError naming it.

    Before adopting a SQLite file (the earlier system's, changed in place) a
    consistent copy is written beside it unless ``backup=False``; the report
    names it, and says when the SQLite file did not exist and was created.
    """
    from alembic import command

    zone = timestamps.resolve_zone(legacy_timezone)

    script = script_directory()
    path = None if isinstance(database, Engine) else sqlite_path(normalize_url(database))
    created = path is not None and not path.exists()
    backup_path: str | None = None
    with _engine(database) as engine:
        if backup and not created and engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                before = read_state(connection)
            file = sqlite_path(engine.url)
            if before.kind is DatabaseKind.LEGACY and file is not None:
                from karr_db.backup import backup_sqlite

                backup_path = str(backup_sqlite(file))
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
        created=created,
        backup=backup_path,
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
    from karr_db.migrations.runner import migration_transaction

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
        if zone is not None and _declares_zone_table(state.alembic_revision, script):
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


class OfflineAdoptionError(SchemaError):
    """Adopting a legacy database cannot be rendered as a script."""


def upgrade_sql(
    database: str | URL, revision: str = "head", *, from_empty: bool = False
) -> UpgradeSQL:
    """The SQL ``upgrade`` would run on *this* database, for a DBA to review and apply.

    The database is read (read-only) to find where it stands: at head there is
    nothing to do (``sql`` is empty); behind, the script starts at its current
    revision; an empty database (or a SQLite file that does not exist yet) gets
    the whole schema. ``from_empty`` renders the whole schema without looking at
    the database. Adopting a legacy database is refused
    (:class:`OfflineAdoptionError`): adoption inspects and converts the live
    rows, which no script written in advance can do.
    """
    url = normalize_url(database)
    state: DatabaseState | None = None
    if not from_empty:
        path = sqlite_path(url)
        if path is None or path.exists():
            with _engine(url, read_only=True) as engine, engine.connect() as connection:
                state = read_state(connection)
    chain = revision_chain()
    target = chain.head if revision == "head" else revision
    if state is None or state.kind is DatabaseKind.EMPTY:
        start = None
    elif state.kind is DatabaseKind.MANAGED:
        start = state.alembic_revision
        assert start is not None
        if start == target or target in chain.order[: chain.order.index(start)]:
            return UpgradeSQL(kind=state.kind, from_revision=start, to_revision=start, sql="")
    elif state.kind is DatabaseKind.LEGACY:
        raise OfflineAdoptionError(
            f"cannot render the SQL of adopting this database offline: it is the earlier "
            f"system's, at schema_version {state.schema_version}, and adoption inspects and "
            "converts its rows as it goes; run `karr-db upgrade` on it (SQLite files are "
            "backed up first) or on a copy, or review `karr-db upgrade --sql --from-empty`"
        )
    else:
        raise_unless_current(state)  # newer, unversioned, unadoptable: their own errors
        raise AssertionError(state.kind)  # pragma: no cover
    from alembic import command

    buffer = io.StringIO()
    config = alembic_config(url.render_as_string(hide_password=False))
    config.output_buffer = buffer
    command.upgrade(config, f"{start}:{target}" if start else target, sql=True)
    return UpgradeSQL(
        kind=DatabaseKind.EMPTY if state is None else state.kind,
        from_revision=start,
        to_revision=target,
        sql=buffer.getvalue(),
    )


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
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from karr_db.migrations.runner import CONTEXT_OPTIONS

    script = script_directory()
    findings: list[Finding] = []
    with _engine(database, read_only=True) as engine, engine.connect() as connection:
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
    """Alembic does not compare triggers or functions: each revision's contract
    declares the ones it installs and, as guards, what they must do (see
    :mod:`karr_db.migrations.guards`); each must still be there and do it."""
    dialect = connection.dialect.name
    applied = contracts_upto(revision, script)
    expected: dict[tuple[str, str], Any] = {}  # a later revision's guard replaces its namesake
    for contract in applied.values():
        for guard in contract.guards_on(dialect):
            expected[type(guard).__name__, guard.name] = guard
    findings = [
        Finding(kind="drift", message=f"event-log guard: {problem}")
        for problem in guard_findings(connection, list(expected.values()))
    ]
    guarded = {name for _, name in expected}
    return findings + [
        Finding(kind="drift", message=f"{problem} (revision {rev})")
        for rev, problem in declared_object_findings(connection, applied, skip=guarded)
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
    missing = (
        [
            Finding(
                kind="drift",
                message=f"table {timestamps.ZONE_TABLE} missing from the database (or empty): "
                "run `karr-db repair-timestamps --legacy-timezone ZONE`",
            )
        ]
        if _declares_zone_table(revision, script) and timestamps.recorded_zone(connection) is None
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


def _declares_zone_table(revision: str | None, script: ScriptDirectory) -> bool:
    """Whether a database at ``revision`` has the legacy zone table (revision 0006's)."""
    return any(
        timestamps.ZONE_TABLE in contract.other_tables
        for contract in contracts_upto(revision, script).values()
    )
