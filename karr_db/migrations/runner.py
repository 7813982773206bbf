"""What ``karr_db/migrations/alembic/env.py`` runs: locking, safety checks and
legacy adoption. Revisions reach ``record_schema_version``, ``refuse_downgrade``
and ``create_tables`` through :mod:`karr_db.migrations.ops`, never directly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import Connection

from karr_db.engine import SQLITE_BEGIN_OPTION, default_database_url, make_engine, normalize_url
from karr_db.errors import (
    NewerSchemaError,
    SchemaError,
    UnadoptableSchemaError,
    UnversionedDatabaseError,
)
from karr_db.migrations.readiness import DatabaseKind, read_state
from karr_db.migrations.scripts import KARR_TABLES, contracts, reference_versions
from karr_db.models import Base
from karr_db.models.types import format_timestamp, utcnow

if TYPE_CHECKING:
    from alembic.runtime.environment import EnvironmentContext

#: Key of the PostgreSQL advisory lock that serialises concurrent upgrades
#: ("KARR" in ASCII); held until the migration transaction ends.
ADVISORY_LOCK_KEY = 0x4B415252

#: Options every migration context uses; the checks build theirs from these too.
CONTEXT_OPTIONS: dict[str, Any] = {
    "compare_type": True,
    "render_as_batch": True,  # SQLite needs batch mode ("move and copy") for ALTER
    "transaction_per_migration": False,  # one transaction: all revisions or none
    "transactional_ddl": True,  # true on SQLite too once pysqlite stops autocommitting DDL
}


def comparison_options(dialect: str) -> dict[str, Any]:
    """What Alembic's comparison (``alembic check``, autogenerate, ``karr-db
    check``) must leave out to see a freshly upgraded database as current:
    tables that are not KARR's (a shared database's, and the revisions' own
    helper tables such as ``karr_legacy_timezone``, which ``karr-db check``
    verifies from the contracts instead) and what the models create on another
    dialect only (``Index.ddl_if``)."""

    def include_name(name: str | None, type_: str, _parent: object) -> bool:
        return type_ != "table" or name in KARR_TABLES

    def include_object(
        item: object, _name: str | None, _type: str, reflected: bool, _to: object
    ) -> bool:
        only = getattr(item, "_ddl_if", None)
        return reflected or only is None or only.dialect in (None, dialect)

    return {"include_name": include_name, "include_object": include_object}


def database_url(context: EnvironmentContext) -> str:
    """``-x url=...``, then the config's ``sqlalchemy.url``, then ``KARR_DATABASE_URL``
    (or the default SQLite file)."""
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or context.config.get_main_option("sqlalchemy.url") or default_database_url()
    return normalize_url(url).render_as_string(hide_password=False)


def run_offline(context: EnvironmentContext) -> None:
    """Render the SQL of an upgrade (``--sql``) for a DBA to review and apply."""
    contracts(context.script)  # what online upgrades check under the lock: sound scripts
    url = database_url(context)
    context.configure(
        url=url,
        target_metadata=Base.metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **CONTEXT_OPTIONS,
    )
    with context.begin_transaction():
        if normalize_url(url).get_backend_name() == "postgresql":
            context.execute(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})")
        context.run_migrations()


def run_online(context: EnvironmentContext) -> None:
    """Migrate a live database under a lock, adopting a legacy one first."""
    attributes = context.config.attributes
    connection: Connection | None = attributes.get("connection")
    if connection is not None:
        _run_on(context, connection)
        return
    engine = attributes.get("engine")
    owned = engine is None
    if engine is None:
        engine = make_engine(database_url(context), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            _run_on(context, connection)
    finally:
        if owned:
            engine.dispose()


def _run_on(context: EnvironmentContext, connection: Connection) -> None:
    if connection.in_transaction():
        # The caller already owns a transaction (and so the locking).
        _migrate(context, connection)
        return
    with migration_transaction(connection):
        _migrate(context, connection)


@contextmanager
def migration_transaction(connection: Connection) -> Iterator[None]:
    """One transaction holding the database's migration lock from its first statement.

    SQLite: ``BEGIN IMMEDIATE`` takes the write lock before the version is
    read, and foreign keys are off (as SQLite's ALTER procedure requires) but
    checked before commit. PostgreSQL: a transaction-level advisory lock.
    """
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys = OFF")  # only effective outside a transaction
        connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        try:
            with connection.begin():
                yield
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    table, rowid, parent, _ = broken[0]
                    raise SchemaError(
                        f"migration left {len(broken)} broken foreign key(s), e.g. {table} "
                        f"rowid {rowid} -> {parent}; rolled back, nothing was changed"
                    )
        finally:
            connection.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
            raw.execute("PRAGMA foreign_keys = ON")
    else:
        with connection.begin():
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))
            yield


def _migrate(context: EnvironmentContext, connection: Connection) -> None:
    script = context.script
    state = read_state(connection, script)
    if state.kind is DatabaseKind.NEWER:
        raise NewerSchemaError(state.found, state.supported)
    if state.kind is DatabaseKind.UNVERSIONED:
        raise UnversionedDatabaseError(list(state.tables))
    if state.kind is DatabaseKind.UNADOPTABLE:
        assert state.schema_version is not None
        raise UnadoptableSchemaError(state.schema_version, reference_versions(script))
    # What this run saw under the lock: the API reports what *it* applied.
    context.config.attributes["karr_state"] = state
    if state.kind is DatabaseKind.LEGACY:
        from karr_db.migrations.adopt import adopt

        assert state.schema_version is not None
        from karr_db.migrations import timestamps

        attributes = context.config.attributes
        report = adopt(
            connection,
            state.schema_version,
            script,
            legacy_timezone=timestamps.configured_zone(attributes),
        )
        attributes[timestamps.ATTR_ADOPTED] = ZoneInfo(report.zone)
        attributes.setdefault("karr_timestamp_reports", []).append(report)
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        **CONTEXT_OPTIONS,
        **comparison_options(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


def record_schema_version(version: int | None) -> None:
    """The bridge: a revision that implements a reference schema version records
    it in its own transaction; karr_db's own revisions (``None``) record nothing."""
    from alembic import op

    if version is None:
        return

    dialect = op.get_context().dialect.name
    applied_at: Any = (
        sa.func.now() if dialect == "postgresql" else sa.literal(format_timestamp(utcnow()))
    )
    table = sa.table(
        "schema_version", sa.column("version", sa.Integer), sa.column("applied_at", sa.Text)
    )
    op.execute(table.insert().values(version=version, applied_at=applied_at))


def refuse_downgrade() -> None:
    """Every revision's ``downgrade``: migrations are forward-only."""
    from karr_db.errors import DowngradeRefusedError

    raise DowngradeRefusedError()


def create_tables(tables: list[sa.Table]) -> None:
    """Emit CREATE TABLE and CREATE INDEX for tables a revision describes.

    Revisions describe their tables as ``sa.Table`` objects (rather than inline
    ``op.create_table`` calls) so that adoption can rebuild a legacy database
    to exactly the schema of its version.
    """
    from alembic import op
    from alembic.operations import ops

    for table in tables:
        create = ops.CreateTableOp.from_table(table)
        # Alembic lists a table's constraints from a set, whose order changes from
        # process to process; in the order the revision declares them (SQLAlchemy's
        # creation order), CREATE TABLE reads the same on every run.
        create.columns = [*table.columns, *table._sorted_constraints]
        op.invoke(create)
        for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
            op.invoke(ops.CreateIndexOp.from_index(index))
