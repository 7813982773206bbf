"""Where a database stands: what it holds (:func:`read_state`), ``status`` (for
people) and ``require_current`` (the cheap gate every unit of work passes), all
read-only.

Alembic is not imported for a database at this release's head
(:data:`~karr_db.head.HEAD_REVISION`): ``require_current`` then
needs no revision chain. Any other database is classified against Alembic's
reading of the chain (:func:`~karr_db.migrations.scripts.revision_chain`). The
report models (Pydantic classes) wait until :func:`status` builds one:
``require_current`` runs before every command and needs none of them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, inspect, text

from karr_db.engine import make_engine, normalize_url, sqlite_path
from karr_db.errors import (
    NewerSchemaError,
    NotReadyError,
    UnadoptableSchemaError,
    UnversionedDatabaseError,
)
from karr_db.head import HEAD_REVISION, SCHEMA_VERSION
from karr_db.migrations import pending
from karr_db.migrations.scripts import (
    KARR_TABLES,
    RevisionChain,
    chain_of,
    contract_of,
    revision_chain,
    script_directory,
)

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

    from karr_db.migrations.reports import Database, DatabaseStatus

__all__ = [
    "DatabaseKind",
    "DatabaseState",
    "raise_unless_current",
    "read_state",
    "require_current",
    "status",
]


class DatabaseKind(enum.StrEnum):
    EMPTY = "empty"  # no KARR tables: upgrade creates everything
    LEGACY = "legacy"  # schema_version rows, no alembic_version: adopt, then upgrade
    MANAGED = "managed"  # alembic_version present and known
    NEWER = "newer"  # alembic_version names a revision this release does not know: refuse
    # schema_version rows of a schema no revision records (a KITT schema newer than
    # this release knows, or nonsense) and no alembic_version: refuse
    UNADOPTABLE = "unadoptable"
    UNVERSIONED = "unversioned"  # KARR tables without any version information: refuse


@dataclass(frozen=True)
class DatabaseState:
    kind: DatabaseKind
    alembic_revision: str | None
    schema_version: int | None
    tables: tuple[str, ...]
    head_revision: str
    head_version: int  # the reference schema version the head revision implements
    #: Runs wait in ``karr_pending_derivation`` (:mod:`karr_db.migrations.pending`).
    derivation_pending: bool = False

    @property
    def found(self) -> str:
        """The database's version, worded for messages."""
        if self.alembic_revision is not None:
            return f"revision {self.alembic_revision}"
        return f"schema_version {self.schema_version}"

    @property
    def supported(self) -> str:
        return f"revision {self.head_revision}"


def read_state(
    connection: Connection, script: ScriptDirectory | RevisionChain | None = None
) -> DatabaseState:
    """Classify the database without writing to it (and without counting rows).

    Without ``script``, a database at :data:`HEAD_REVISION` is classified without
    reading the revision chain (Alembic's loading of every revision): the
    readiness check of every command takes this path. Otherwise the chain is the
    package's, or ``script``'s.
    """
    names = set(inspect(connection).get_table_names())
    tables = tuple(t for t in KARR_TABLES if t in names)
    alembic_revision: str | None = None
    if "alembic_version" in names:
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        alembic_revision = rows[0] if len(rows) == 1 else None
        if len(rows) > 1:
            alembic_revision = ",".join(sorted(rows))
    schema_version: int | None = None
    if "schema_version" in names:
        schema_version = connection.execute(
            text("SELECT max(version) FROM schema_version")
        ).scalar_one_or_none()
    derivation = pending.TABLE in names and pending.has_runs(connection)
    if script is None and alembic_revision == HEAD_REVISION:
        # At the head KITT's migrations never ran on it (see _kitt_migrated: the
        # head made schema 3 and more), so it is this release's own.
        return DatabaseState(
            DatabaseKind.MANAGED,
            alembic_revision,
            schema_version,
            tables,
            HEAD_REVISION,
            SCHEMA_VERSION,
            derivation,
        )
    chain = (
        revision_chain()
        if script is None
        else script
        if isinstance(script, RevisionChain)
        else chain_of(script)
    )
    versions = chain.recorded
    head = chain.head
    head_version = chain.reference_version_at(head)

    if alembic_revision is not None and _kitt_migrated(
        chain, alembic_revision, schema_version, names
    ):
        # KITT saw a karr_db database from before its schema 3 and ran its own
        # migrations on it: adopted again at the schema KITT left it at.
        kind = DatabaseKind.LEGACY
    elif alembic_revision is not None:
        # schema_version is the reference's bridge, not a second clock: a
        # mismatch is ``check``'s business, not a reason to refuse.
        kind = DatabaseKind.MANAGED if alembic_revision in versions else DatabaseKind.NEWER
    elif "alembic_version" in names and tables:
        kind = DatabaseKind.UNVERSIONED  # an emptied alembic_version table
    elif schema_version is not None:
        adoptable = schema_version in chain.reference_versions()
        kind = DatabaseKind.LEGACY if adoptable else DatabaseKind.UNADOPTABLE
    elif tables:
        kind = DatabaseKind.UNVERSIONED
    else:
        kind = DatabaseKind.EMPTY
    return DatabaseState(
        kind, alembic_revision, schema_version, tables, head, head_version, derivation
    )


def _kitt_migrated(
    chain: RevisionChain, revision: str, schema_version: int | None, names: set[str]
) -> bool:
    """Whether KITT's own migrations ran on a karr_db database at ``revision``: it
    records a KITT schema above what the revision made and has KITT's tables
    (schema 3's ``web_settings``; karr_db's releases before KITT's lineage recorded
    3 and 4 for revisions of their own, without that table)."""
    if revision not in chain.recorded or schema_version is None:
        return False
    made = chain.reference_version_at(revision)
    return (
        made < 3 <= schema_version
        and schema_version in chain.reference_versions()
        and "web_settings" in names
    )


@contextmanager
def open_engine(database: Database, *, read_only: bool = False) -> Iterator[Engine]:
    if isinstance(database, Engine):
        yield database
        return
    engine = make_engine(database, poolclass=sa.pool.NullPool, read_only=read_only)
    try:
        yield engine
    finally:
        engine.dispose()


def pending_revisions(state: DatabaseState, script: ScriptDirectory) -> list[str]:
    if state.kind in (DatabaseKind.NEWER, DatabaseKind.UNVERSIONED):
        return []
    if state.kind is DatabaseKind.LEGACY and state.schema_version is not None:
        # Adoption stamps KITT's schema N: what remains is karr_db's own revisions
        # (adoption runs those before N itself) and KITT's schemas after N.
        version = state.schema_version
        revisions = reversed(list(script.iterate_revisions("heads", "base")))
        return [
            rev.revision
            for rev in revisions
            if (recorded := contract_of(rev).reference_schema_version) is None or recorded > version
        ]
    revisions = script.iterate_revisions("heads", state.alembic_revision or "base")
    return [rev.revision for rev in reversed(list(revisions))]


def read_status(
    connection: Connection, script: ScriptDirectory, *, row_counts: bool = False
) -> DatabaseStatus:
    from karr_db.migrations.reports import DatabaseStatus

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
        pending=pending_revisions(state, script),
        needs_adoption=state.kind is DatabaseKind.LEGACY,
        derivation_pending=pending.count(connection) if state.derivation_pending else 0,
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
        from karr_db.migrations.reports import DatabaseStatus

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
    with open_engine(database, read_only=True) as engine, engine.connect() as connection:
        return read_status(connection, script_directory(), row_counts=row_counts)


def raise_unless_current(state: DatabaseState) -> None:
    """The layer's error, with the next step, for a database this release cannot
    use as it stands: empty, legacy (not yet adopted), behind, newer, or at head
    with derivation still pending (reads would miss rows a save derives, and a
    save would duplicate a content whose fingerprint is not recorded yet)."""
    kind = state.kind
    if kind is DatabaseKind.MANAGED and state.alembic_revision == state.head_revision:
        if state.derivation_pending:
            raise NotReadyError(
                "derivation",
                "the database is at this release's schema but the rows derived from its runs' "
                "documents are not all written yet (an upgrade stopped before its derivation "
                "step finished, or the revisions were applied without it): run `karr-db upgrade` "
                "(or karr_db.migrations.upgrade), which resumes where it stopped",
            )
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

    Reads the version tables only: no row is counted, and Alembic is not
    imported for a database at the head, so it is cheap enough to run before
    every unit of work.
    """
    with open_engine(database, read_only=True) as engine, engine.connect() as connection:
        state = read_state(connection)
    raise_unless_current(state)
    return state
