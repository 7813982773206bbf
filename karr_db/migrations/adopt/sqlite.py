"""Adoption on SQLite: every table rebuilt with the reference DDL, rows copied
and counted, AUTOINCREMENT's high-water mark kept."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from karr_db.errors import AdoptionError
from karr_db.migrations.adopt._common import (
    naming_failed_rows,
    pk_columns,
    quote,
    refuse_extra_columns,
    value_error,
)
from karr_db.models import Base
from karr_db.models.types import Double, IntBool, JSONDocument, UTCDateTime

#: Prefix of the renamed original while its rows are copied into the rebuilt table.
LEGACY_PREFIX = "_karr_legacy_"


def conform_sqlite(connection: Connection, tables: list[sa.Table]) -> None:
    # With legacy_alter_table on (and foreign keys off, as the migration
    # transaction has them), renaming a table leaves other tables' REFERENCES
    # clauses alone, which is what the copy-and-swap below relies on.
    connection.exec_driver_sql("PRAGMA legacy_alter_table = ON")
    try:
        for table in tables:
            _rebuild_sqlite(connection, table)
    finally:
        connection.exec_driver_sql("PRAGMA legacy_alter_table = OFF")


def _sqlite_scalar(connection: Connection, sql: str, *params: Any) -> Any:
    return connection.exec_driver_sql(sql, params).scalar()


def _rebuild_sqlite(connection: Connection, table: sa.Table) -> None:
    name = table.name
    quoted = quote(connection, name)
    if not _sqlite_scalar(
        connection, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", name
    ):
        table.create(connection)
        return
    live = [row[1] for row in connection.exec_driver_sql(f"PRAGMA table_info({quoted})")]
    refuse_extra_columns(table, live)
    _validate_sqlite_values(connection, table, live)

    rows_before = _sqlite_scalar(connection, f"SELECT count(*) FROM {quoted}")
    legacy_seq = None
    if _sqlite_scalar(
        connection, "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'"
    ):
        legacy_seq = _sqlite_scalar(
            connection, "SELECT seq FROM sqlite_sequence WHERE name = ?", name
        )
    indexes = (
        connection.exec_driver_sql(
            "SELECT name FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            (name,),
        )
        .scalars()
        .all()
    )
    for index in indexes:
        connection.exec_driver_sql(f"DROP INDEX {quote(connection, index)}")

    legacy = quote(connection, LEGACY_PREFIX + name)
    connection.exec_driver_sql(f"ALTER TABLE {quoted} RENAME TO {legacy}")
    table.create(connection)
    columns = ", ".join(quote(connection, c.name) for c in table.columns if c.name in live)
    with naming_failed_rows(connection, table, LEGACY_PREFIX + name):
        connection.exec_driver_sql(
            f"INSERT INTO {quoted} ({columns}) SELECT {columns} FROM {legacy}"
        )
    rows_after = _sqlite_scalar(connection, f"SELECT count(*) FROM {quoted}")
    if rows_after != rows_before:
        raise AdoptionError(f"copied {rows_after} of {rows_before} rows", table=name)
    connection.exec_driver_sql(f"DROP TABLE {legacy}")

    if legacy_seq is not None and table.kwargs.get("sqlite_autoincrement"):
        # Keep AUTOINCREMENT's promise: ids of deleted rows are never reused.
        current = _sqlite_scalar(connection, "SELECT seq FROM sqlite_sequence WHERE name = ?", name)
        if current is None:
            connection.exec_driver_sql(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (name, legacy_seq)
            )
        elif legacy_seq > current:
            connection.exec_driver_sql(
                "UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (legacy_seq, name)
            )


def _validate_sqlite_values(connection: Connection, table: sa.Table, live: list[str]) -> None:
    """Every stored value must read back through the model's type.

    The models (not the revision's plain column types) define how values are
    read, so they are the judge of what is readable.
    """
    dialect = connection.dialect
    pk = pk_columns(table)
    model = Base.metadata.tables.get(table.name)
    for column in model.columns if model is not None else ():
        if column.name not in live or not isinstance(
            column.type, UTCDateTime | JSONDocument | IntBool | Double
        ):
            continue
        cols = ", ".join(quote(connection, c) for c in [*pk, column.name])
        result = connection.exec_driver_sql(
            f"SELECT {cols} FROM {quote(connection, table.name)} "
            f"WHERE {quote(connection, column.name)} IS NOT NULL"
        )
        # Closed before the error leaves: an open statement would keep the file
        # locked for as long as the traceback lives.
        with result:
            found = next(
                (
                    (row, problem)
                    for row in result
                    if (problem := _unreadable(column, row[-1], dialect))
                ),
                None,
            )
        if found is not None:
            row, problem = found
            raise value_error(
                table,
                column,
                row,
                f"cannot be read as {column.type.__class__.__name__} ({problem})",
            )


def _unreadable(column: sa.Column[Any], value: Any, dialect: Any) -> str | None:
    """Why ``value`` does not read back through ``column``'s type, or ``None``."""
    try:
        if isinstance(column.type, IntBool) and value not in (0, 1):
            raise ValueError(f"{value!r} is not 0 or 1")
        kind: Any = column.type  # one of the model types checked above
        kind.process_result_value(value, dialect)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None
