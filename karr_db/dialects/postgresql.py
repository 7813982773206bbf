"""PostgreSQL's side of the seam: set-based ``unnest`` inserts and COPY (raw psycopg),
ids from sequences, the advisory lock, LISTEN/NOTIFY, ``percentile_cont``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Table, func
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles

from karr_db.dialects import (
    EVENT_LOG_LOCK_KEY,
    arrays,
    driver_connection,
    group_digest,
    poll,
    refuse_writes,
)
from karr_db.engine import behind_pooler
from karr_db.limits import MAX_EVENTS_PER_APPEND

__all__ = ["DIALECT", "EVENT_LOG_LOCK_KEY", "PostgreSQLDialect", "unnest_arrays"]


def unnest_arrays(table: str, columns: Sequence[str]) -> str:
    """``unnest(%s::type[], ..)``, typed like the table's columns.

    Rows go in as one array per column (see :func:`~karr_db.dialects.arrays`):
    psycopg's executemany would run one INSERT per row on the server.
    """
    types = _column_types(table)
    return "unnest(" + ", ".join(f"%s::{types[c]}[]" for c in columns) + ")"


@cache
def _column_types(table: str) -> dict[str, str]:
    from karr_db.models import Base

    dialect = PostgreSQLDialect.sqlalchemy_dialect
    return {c.name: c.type.compile(dialect=dialect) for c in Base.metadata.tables[table].columns}


def _copy(connection: Connection, statement: str, rows: list[tuple[Any, ...]]) -> None:
    """COPY rows in through psycopg; its errors leave as SQLAlchemy's
    (:func:`~karr_db.dialects.driver_connection`)."""
    with (
        driver_connection(connection, statement) as driver,
        driver.cursor() as cursor,
        cursor.copy(statement) as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _copy_binary(
    connection: Connection, table: str, columns: Sequence[str], rows: list[Any]
) -> None:
    """COPY in binary format: no number printed as text by the client and parsed again
    by the server. Binary input must match each column's type exactly, so the
    types are the catalog's."""
    types: dict[str, str] = dict(
        connection.exec_driver_sql(
            "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
            "WHERE attrelid = CAST(%s AS regclass) AND attnum > 0 AND NOT attisdropped",
            (table,),
        ).all()
    )
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    with (
        driver_connection(connection, statement) as driver,
        driver.cursor() as cursor,
        cursor.copy(statement) as copy,
    ):
        copy.set_types([types[column] for column in columns])
        for row in rows:
            copy.write_row(row)


def _in_recovery(connection: Connection) -> bool:
    """Whether the server is a hot standby (replaying a primary's WAL)."""
    with connection.begin():
        return bool(connection.exec_driver_sql("SELECT pg_is_in_recovery()").scalar())


def _fetch(connection: Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    """Plain tuples from the driver's cursor, in binary (arrays of text arrive without
    being parsed from their text form): for reads of a million rows, where
    SQLAlchemy's Row objects cost seconds. Errors leave as
    :func:`~karr_db.dialects.driver_connection` makes them."""
    with driver_connection(connection, sql) as driver, driver.cursor(binary=True) as cursor:
        return list(cursor.execute(sql, params).fetchall())


@compiles(group_digest, "postgresql")
def _group_digest(element: group_digest, compiler: Any, **kw: Any) -> str:
    return f"md5({compiler.process(element.clauses, **kw)})"


class PostgreSQLDialect:
    """See :class:`karr_db.dialects.Dialect`."""

    name = "postgresql"
    sqlalchemy_dialect: Dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    mark = "%s"
    raw_json_text = "raw_json::text"
    stored_nan: str | None = None
    # PostgreSQL plans the first hardware row of each run best as a LATERAL join.
    lateral_pages = True
    round_trips = True
    retries_begin_immediate = False
    supports_roles = True
    backup_by_copy = False
    has_replicas = True
    read_only_options: Mapping[str, Any] = MappingProxyType({"isolation_level": "AUTOCOMMIT"})
    snapshot_begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

    def bulk_insert(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
        *,
        copy: bool = False,
    ) -> None:
        # JSON columns take JSON text, which PostgreSQL casts element by element.
        if not rows:
            return
        names = ", ".join(columns)
        if copy:
            _copy(connection, f"COPY {table} ({names}) FROM STDIN", rows)
        else:
            connection.exec_driver_sql(
                f"INSERT INTO {table} ({names}) SELECT * FROM {unnest_arrays(table, columns)}",
                arrays(rows),
            )

    def insert_numbered(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
    ) -> list[int]:
        # Ids are drawn from the column's sequence in a materialised CTE and
        # matched to the rows by position, so the returned ids follow ``rows``
        # without relying on the order rows are inserted in.
        if not rows:
            return []
        names = ", ".join(columns)
        result = connection.exec_driver_sql(
            f"WITH input AS (SELECT * FROM {unnest_arrays(table, columns)} "
            f"WITH ORDINALITY AS t({names}, n)), "
            "numbered AS MATERIALIZED (SELECT n, "
            f"nextval(pg_get_serial_sequence('{table}', 'id')) AS id FROM input), "
            f"inserted AS (INSERT INTO {table} (id, {names}) "
            f"SELECT numbered.id, {names} FROM input JOIN numbered USING (n)) "
            "SELECT id FROM numbered ORDER BY n",
            arrays(rows),
        )
        return [row[0] for row in result]

    def insert_ignore(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
    ) -> int:
        if not rows:
            return 0
        names = ", ".join(columns)
        result = connection.exec_driver_sql(
            f"INSERT INTO {table} ({names}) "
            f"SELECT * FROM {unnest_arrays(table, columns)} ON CONFLICT DO NOTHING",
            arrays(rows),
        )
        return max(int(result.rowcount or 0), 0)

    def metric_names_of(
        self, connection: Connection, benchmark_ids: list[int], run_ids: list[str]
    ) -> list[tuple[int, str]]:
        # The benchmark ids themselves: for a subquery on the runs PostgreSQL
        # plans a hash join over every metric row, once per call, where the
        # index finds a batch's rows directly.
        return _fetch(
            connection,
            "SELECT benchmark_id, metric_name FROM metrics WHERE benchmark_id = ANY(%s)",
            (benchmark_ids,),
        )

    def bulk_load(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
    ) -> None:
        if rows:
            _copy_binary(connection, table, columns, rows)

    def metric_name_groups(
        self, connection: Connection, benchmark_ids: list[int], run_ids: list[str]
    ) -> list[tuple[int, list[str]]]:
        # One row and one text array per benchmark, not one Python row per
        # (id, name): re-deriving a large history reads millions of those.
        return _fetch(
            connection,
            "SELECT benchmark_id, array_agg(metric_name) FROM metrics "
            "WHERE benchmark_id = ANY(%s) GROUP BY benchmark_id",
            (benchmark_ids,),
        )

    def lock_event_log(self, connection: Connection) -> None:
        refuse_writes(connection, "taking the event log's lock")
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({EVENT_LOG_LOCK_KEY})")

    def append_events(
        self,
        connection: Connection,
        rows: list[tuple[str, str | None, str | None]],
        created: datetime,
    ) -> list[int]:
        # Revision 0008's function takes the lock, draws the ids from the
        # sequence under it (gapless), inserts and notifies: the one way the
        # application role may append, so it can choose no id.
        refuse_writes(connection, "appending events")
        ids: list[int] = []
        for start in range(0, len(rows), MAX_EVENTS_PER_APPEND):  # the function's bound
            result = connection.exec_driver_sql(
                "SELECT karr_append_events(%s::text[], %s::text[], %s::jsonb[], %s)",
                (*arrays(rows[start : start + MAX_EVENTS_PER_APPEND]), created),
            )
            ids += [int(i) for i in result.scalar_one()]
        return ids

    def wait_for_events(
        self,
        engine: Engine,
        found: Callable[[Connection], bool],
        *,
        channel: str,
        timeout: float,
        poll_interval: float,
    ) -> bool:
        # LISTEN on a connection of its own, outside any transaction, checking
        # after LISTEN so that a commit in between is not missed. A pooler in
        # transaction mode cannot carry a LISTEN (it belongs to whichever server
        # connection ran it), and a hot standby refuses it (NOTIFY is not
        # replicated): there, poll.
        deadline = time.monotonic() + timeout
        with engine.connect() as plain:
            if behind_pooler(plain) or _in_recovery(plain):
                return poll(plain, found, timeout=timeout, interval=poll_interval)
            connection = plain.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql(f"LISTEN {channel}")
            try:
                driver = connection.connection.driver_connection
                assert driver is not None
                while True:
                    if found(connection):
                        return True
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    for _ in driver.notifies(timeout=remaining, stop_after=1):
                        pass
            finally:
                connection.exec_driver_sql(f"UNLISTEN {channel}")

    def upsert(self, table: Table) -> Any:
        return postgresql.insert(table)

    def extremes(self) -> tuple[Any, Any]:
        # least/greatest skip NULLs.
        return func.least, func.greatest

    def median_ranks(
        self, partition: list[Any], finite: ColumnElement[bool], value: ColumnElement[Any]
    ) -> list[Any]:
        # percentile_cont gives the same median without the two window passes.
        return []

    def median(self, inner: Any, value: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.percentile_cont(0.5).within_group(inner.c.v)

    @contextmanager
    def large_cache(self, connection: Connection, kib: int) -> Iterator[None]:
        yield  # shared_buffers is the server's, not a connection's

    @contextmanager
    def references_checked_at_end(self, connection: Connection, table: str) -> Iterator[None]:
        # Each inserted row's foreign key check is a trigger running a query,
        # where adding the key back validates every row in one join. Dropped and
        # added back with the catalog's own
        # definition, in the caller's transaction: nothing is unchecked when it ends.
        keys = connection.exec_driver_sql(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(%s AS regclass) AND contype = 'f' ORDER BY conname",
            (table,),
        ).all()
        quote = connection.dialect.identifier_preparer.quote
        for name, _ in keys:
            connection.exec_driver_sql(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
        yield  # not restored on an error: the caller's transaction rolls back
        for name, definition in keys:
            connection.exec_driver_sql(
                f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}"
            )


DIALECT: PostgreSQLDialect = PostgreSQLDialect()
