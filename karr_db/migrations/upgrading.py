"""Changing a database: ``upgrade`` (adopting a legacy one first), its offline
form ``upgrade_sql`` (``--sql``), and ``repair_timestamps``.

Alembic is imported inside the functions: importing the package for a
readiness check must not pay for it.
"""

from __future__ import annotations

import io
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from karr_db.engine import normalize_url, sqlite_path, storage_error
from karr_db.errors import SchemaError
from karr_db.migrations import timestamps
from karr_db.migrations.readiness import (
    DatabaseKind,
    DatabaseState,
    open_engine,
    pending_revisions,
    raise_unless_current,
    read_state,
    read_status,
)
from karr_db.migrations.reports import (
    Database,
    Derivation,
    TimestampRepair,
    UpgradeReport,
    UpgradeSQL,
)
from karr_db.migrations.scripts import (
    alembic_config,
    other_tables_at,
    revision_chain,
    script_directory,
)

log = logging.getLogger(__name__)

__all__ = ["OfflineAdoptionError", "repair_timestamps", "upgrade", "upgrade_sql"]


def upgrade(
    database: Database,
    revision: str = "head",
    *,
    backup: bool = True,
    legacy_timezone: str | None = None,
) -> UpgradeReport:
    """Adopt the database if needed, migrate it to ``revision`` and, at the head,
    derive the rows of the runs adoption or revision 0007 queued.

    Derivation is a step of its own after the revisions
    (:mod:`karr_db.migrations.derivation`): a batch of runs per transaction, so
    an upgrade killed while deriving keeps what it committed and the next one
    goes on from there; until it has finished the database is not ready
    (:func:`~karr_db.migrations.require_current` says so).

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
    try:
        with open_engine(database) as engine:
            with _journal_mode_kept_on_failure(None if created else path):
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
                    after = read_status(connection, script)
            # After the revisions committed (a failure here changes nothing they did).
            derived = None
            if after.kind is DatabaseKind.MANAGED and after.alembic_revision == after.head_revision:
                from karr_db.migrations.derivation import derive_pending

                done = derive_pending(engine)
                derived = None if done is None else Derivation(**done.model_dump())
    except DBAPIError as exc:  # a file that is no database, a server that refuses
        raise storage_error("opening and upgrading the database", exc) from exc
    pending_then = pending_revisions(seen, script)
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
        derived=derived,
    )


@contextmanager
def _journal_mode_kept_on_failure(path: Path | None) -> Iterator[None]:
    """A SQLite file an upgrade leaves unchanged keeps its journal mode.

    Connections of the layer switch a file to WAL; an upgrade that fails (a
    refused adoption of the earlier system's file, say) changes nothing, so the
    file goes back to the mode it had, for the tools that still read it.
    """
    found = None
    if path is not None and path.is_file():
        try:
            with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as raw:
                found = str(raw.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        except sqlite3.Error:
            found = None  # not a database, or locked: the upgrade itself says which
    try:
        yield
    except BaseException:
        if path is not None and found in ("delete", "truncate", "persist"):
            try:
                with closing(sqlite3.connect(path)) as raw:
                    raw.execute(f"PRAGMA journal_mode = {found}")
            except sqlite3.Error:
                log.warning("could not restore the journal mode of %s", path, exc_info=True)
        raise


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
        open_engine(database) as engine,
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
        if zone is not None and timestamps.ZONE_TABLE in other_tables_at(
            state.alembic_revision, script
        ):
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
            with open_engine(url, read_only=True) as engine, engine.connect() as connection:
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
