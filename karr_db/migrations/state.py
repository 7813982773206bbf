"""What a database holds: Alembic revision, legacy schema version, KARR tables."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from karr_db.head import HEAD_REVISION, SCHEMA_VERSION
from karr_db.migrations import pending
from karr_db.migrations.scripts import KARR_TABLES, RevisionChain, chain_of, revision_chain

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory


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
