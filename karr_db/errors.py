"""The layer's own exceptions: callers never need to catch a driver exception."""

from __future__ import annotations


class KarrError(Exception):
    """Base class of every error karr_db raises on purpose."""


class SchemaError(KarrError):
    """The database's schema cannot be used or migrated as asked."""


class NewerSchemaError(SchemaError):
    """The database was written by a newer release than this one."""

    def __init__(self, found: str, supported: str) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"database schema is at {found}, newer than {supported}, the newest this "
            "release of karr_db knows; upgrade karr_db (nothing was changed)"
        )


class UnversionedDatabaseError(SchemaError):
    """KARR tables exist but nothing says which schema version they follow."""

    def __init__(self, tables: list[str]) -> None:
        self.tables = tables
        super().__init__(
            f"database has KARR tables ({', '.join(tables)}) but no schema_version rows and "
            "no alembic_version: cannot tell which schema they follow, so nothing was changed; "
            "restore the version table or migrate into an empty database"
        )


class DowngradeRefusedError(SchemaError):
    """Migrations are forward-only."""

    def __init__(self) -> None:
        super().__init__(
            "downgrades are not supported: KARR migrations are forward-only "
            "(nothing was changed); restore a backup to go back"
        )


class AdoptionError(SchemaError):
    """A legacy database could not be brought to the reference schema."""

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        column: str | None = None,
        row: object = None,
    ) -> None:
        self.table = table
        self.column = column
        self.row = row
        where = ".".join(p for p in (table, column) if p)
        if row is not None:
            where += f" (row {row!r})"
        full = f"cannot adopt legacy database: {where}: {message}" if where else message
        super().__init__(full + "; nothing was changed")
