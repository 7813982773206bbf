"""What a database holds: Alembic revision, legacy schema version, KARR tables."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from karr_db.migrations.scripts import (
    KARR_TABLES,
    head_revision,
    reference_version_at,
    reference_versions,
    revision_versions,
)


class DatabaseKind(enum.StrEnum):
    EMPTY = "empty"  # no KARR tables: upgrade creates everything
    LEGACY = "legacy"  # schema_version rows, no alembic_version: adopt, then upgrade
    MANAGED = "managed"  # alembic_version present and known
    NEWER = "newer"  # alembic_version names a revision this release does not know: refuse
    # schema_version rows of a schema that cannot be adopted (the earlier system's own
    # later schemas 3..11, or nonsense) and no alembic_version: refuse
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

    @property
    def found(self) -> str:
        """The database's version, worded for messages."""
        if self.alembic_revision is not None:
            return f"revision {self.alembic_revision} (schema_version {self.schema_version})"
        return f"schema_version {self.schema_version}"

    @property
    def supported(self) -> str:
        return f"revision {self.head_revision} (reference schema version {self.head_version})"


def read_state(connection: Connection, script: ScriptDirectory) -> DatabaseState:
    """Classify the database without writing to it."""
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
    versions = revision_versions(script)
    head = head_revision(script)
    head_version = reference_version_at(head, script)

    if alembic_revision is not None:
        # schema_version is the reference's bridge, not a second clock: a
        # mismatch is ``check``'s business, not a reason to refuse.
        kind = DatabaseKind.MANAGED if alembic_revision in versions else DatabaseKind.NEWER
    elif "alembic_version" in names and tables:
        kind = DatabaseKind.UNVERSIONED  # an emptied alembic_version table
    elif schema_version is not None:
        adoptable = schema_version in reference_versions(script)
        kind = DatabaseKind.LEGACY if adoptable else DatabaseKind.UNADOPTABLE
    elif tables:
        kind = DatabaseKind.UNVERSIONED
    else:
        kind = DatabaseKind.EMPTY
    return DatabaseState(kind, alembic_revision, schema_version, tables, head, head_version)
