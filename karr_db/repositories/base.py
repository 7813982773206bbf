"""Dialect helpers the repositories share (the contract itself is in ``_common``)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, Text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

# The DTO base and the page live with the rest of the repository contract;
# imported here so that ``from karr_db.repositories.base import DTO, Page`` keeps working.
from karr_db.repositories._common import DTO as DTO
from karr_db.repositories._common import Page as Page

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


class group_digest(FunctionElement[str]):
    """A group key short enough for an index: the text itself on SQLite, whose
    index entries have no size limit, its MD5 on PostgreSQL, whose btree entries
    must stay under 2704 bytes while a key of several bounded texts may not."""

    type = Text()
    inherit_cache = True
    name = "group_digest"


@compiles(group_digest)
def _group_digest_default(element: group_digest, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(group_digest, "postgresql")
def _group_digest_postgresql(element: group_digest, compiler: Any, **kw: Any) -> str:
    return f"md5({compiler.process(element.clauses, **kw)})"
