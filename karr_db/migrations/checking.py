"""``check``: the live schema against the models, ``schema_version`` against
``alembic_version``, and what Alembic does not compare (AUTOINCREMENT, the
triggers and functions the revisions' contracts declare, timestamp text).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection

from karr_db.migrations import pending, timestamps
from karr_db.migrations.guards import declared_object_findings, guard_findings
from karr_db.migrations.readiness import DatabaseKind, open_engine, read_status
from karr_db.migrations.reports import Database, DatabaseStatus, Finding
from karr_db.migrations.scripts import (
    KARR_TABLES,
    contracts_upto,
    expected_schema_versions,
    other_tables_at,
    reference_versions,
    script_directory,
)
from karr_db.models import Base

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

__all__ = ["check"]


def check(database: Database) -> list[Finding]:
    """Compare the live schema with the models and ``schema_version`` with ``alembic_version``."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from karr_db.migrations.runner import CONTEXT_OPTIONS, comparison_options

    script = script_directory()
    findings: list[Finding] = []
    with open_engine(database, read_only=True) as engine, engine.connect() as connection:
        state = read_status(connection, script)
        if state.kind is not DatabaseKind.MANAGED:
            findings.append(Finding(kind="state", message=_state_message(state)))
            return findings
        if state.pending:
            findings.append(
                Finding(kind="pending", message=f"pending revisions: {', '.join(state.pending)}")
            )
        if state.derivation_pending:
            findings.append(
                Finding(
                    kind="derivation",
                    message=f"derivation pending ({state.derivation_pending} run(s) whose rows "
                    "are not derived yet): run `karr-db upgrade`",
                )
            )
        findings += _bridge_findings(connection, state, script)
        context = MigrationContext.configure(
            connection,
            opts={**CONTEXT_OPTIONS, **comparison_options(connection.dialect.name)},
        )
        for diff in compare_metadata(context, Base.metadata):
            findings.append(Finding(kind="drift", message=_describe(diff)))
        findings += _sqlite_autoincrement_findings(connection)
        findings += _trigger_findings(connection, script, state.alembic_revision)
        findings += _timestamp_findings(connection, script, state.alembic_revision)
        findings += _foreign_findings(connection, script, state.alembic_revision)
        if not state.pending and not state.derivation_pending:
            findings += _derived_findings(connection)
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
            f"database is at KITT's schema {state.schema_version}; this release adopts "
            f"KITT's schemas {min(reference_versions())} to {max(reference_versions())}"
        ),
    }.get(state.kind, state.kind.value)


def _bridge_findings(
    connection: Connection, state: DatabaseStatus, script: ScriptDirectory
) -> list[Finding]:
    """``schema_version`` must hold the KITT schema numbers that the revisions up to
    ``alembic_version`` record (1..11 at head), from the first one it has on: KITT
    records only the schema a fresh database starts at (2 for KITT 1.1.0's, 11 for
    KITT 1.7's PostgreSQL ones), so rows below that are not expected."""
    assert state.alembic_revision is not None
    recorded = expected_schema_versions(state.alembic_revision, script)
    found = sorted(
        int(v) for v in connection.execute(sa.text("SELECT version FROM schema_version")).scalars()
    )
    expected = [v for v in recorded if not found or v >= found[0]] or recorded
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
            f"rows {unexpected} karr_db does not write (KITT's later migrations may have run here)"
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


def _derived_findings(connection: Connection) -> list[Finding]:
    """``run_fingerprints`` and ``leaderboard_aggregates`` against the rows they are
    derived from (:mod:`karr_db.derive.verify`): a falsified entry shows here.

    ``check`` runs no revision, so it may use the live derivation code: what a
    save derives today is what the tables must say."""
    from karr_db.derive.verify import false_aggregates, false_fingerprints

    # Each table: its contradicted entries, what they are, how one is shown.
    contradicted = (
        (
            "run_fingerprints",
            false_fingerprints(connection),
            "entr(ies) name a run that does not hold that content",
            "{} -> {}",
        ),
        (
            "leaderboard_aggregates",
            false_aggregates(connection),
            "group(s) differ from a recomputation from the rows",
            "{} in group {}",
        ),
    )
    findings = []
    for table, wrong, what, example in contradicted:
        if wrong:
            examples = ", ".join(example.format(*entry) for entry in wrong[:3])
            message = f"{table}: {len(wrong)} {what} (e.g. {examples}); run `karr-db rederive`"
            findings.append(Finding(kind="derived", message=message))
    return findings


def _foreign_findings(
    connection: Connection, script: ScriptDirectory, revision: str | None
) -> list[Finding]:
    """Tables and views no revision declares (in the current schema on PostgreSQL).

    karr_db owns the database it manages: adoption keeps what it does not know
    (it never drops data it did not write), and ``check`` names it, so that a
    table or view planted beside karr_db's does not pass unnoticed.
    """
    inspector = sa.inspect(connection)
    # The derivation queue is reported as pending work, not as a stranger.
    known = {*KARR_TABLES, *other_tables_at(revision, script), "alembic_version", pending.TABLE}
    return [
        Finding(kind="foreign", message=f"{kind} {name} is not karr_db's (no revision declares it)")
        for kind, names in (
            ("table", inspector.get_table_names()),
            ("view", inspector.get_view_names()),
        )
        for name in sorted(names)
        if name not in known
    ]


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
        if timestamps.ZONE_TABLE in other_tables_at(revision, script)
        and timestamps.recorded_zone(connection) is None
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
