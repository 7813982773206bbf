"""Pieces every repository shares."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")


class DTO(BaseModel):
    """Base of every DTO: immutable, built from ORM rows before the session closes."""

    model_config = ConfigDict(frozen=True, from_attributes=True)


class Page(DTO, Generic[T]):
    """One page of results and the opaque cursor of the next (``None`` at the end)."""

    items: list[T]
    next_cursor: str | None = None


# --- bulk inserts shared by the results and events repositories -----------------
#
# Rows are handed to the driver as tuples: executemany on SQLite, and on
# PostgreSQL one ``INSERT .. SELECT FROM unnest(%s::type[], ..)`` (psycopg's
# executemany would run one INSERT per row on the server).


def arrays(rows: Sequence[tuple[Any, ...]]) -> tuple[list[Any], ...]:
    """Rows turned into one list per column (the parameters of :func:`unnest_arrays`)."""
    return tuple(list(column) for column in zip(*rows, strict=True))


def unnest_arrays(table: str, columns: Sequence[str]) -> str:
    """``unnest(%s::type[], ..)`` for PostgreSQL, typed like the table's columns."""
    types = _postgres_types(table)
    return "unnest(" + ", ".join(f"%s::{types[c]}[]" for c in columns) + ")"


@cache
def _postgres_types(table: str) -> dict[str, str]:
    from sqlalchemy.dialects import postgresql

    from karr_db.models import Base

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return {c.name: c.type.compile(dialect=dialect) for c in Base.metadata.tables[table].columns}


def next_sqlite_id(connection: Connection, table: str) -> int:
    """The next AUTOINCREMENT id of ``table``: only safe while holding the write lock.

    Rows inserted with explicit ids from here on advance the counter, so ids
    are never reused.
    """
    value = connection.exec_driver_sql(
        f"SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0), "
        f"coalesce((SELECT max(id) FROM {table}), 0)) + 1"
    ).scalar_one()
    return int(value)


def dialect_insert(dialect: str, table: Table) -> Any:
    """The dialect's own ``INSERT`` construct, which offers ``ON CONFLICT .. DO UPDATE``
    (PostgreSQL's and SQLite's spell it alike)."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)
