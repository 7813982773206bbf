"""SQLite's side of the seam: executemany, ids from the AUTOINCREMENT counter under
the write lock, BEGIN IMMEDIATE-style locking, polling instead of notifications."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Table, and_, case, func, or_
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect

from karr_db.dialects import driver_connection, poll, refuse_writes
from karr_db.engine import SQLITE_BEGIN_OPTION
from karr_db.models.types import SQLITE_NAN, format_timestamp

__all__ = ["DIALECT", "SQLiteDialect", "next_id"]


def next_id(connection: Connection, table: str) -> int:
    """The next AUTOINCREMENT id of ``table``: only safe while holding the write lock.

    Rows inserted with explicit ids from here on advance the counter, so ids
    are never reused.
    """
    value = connection.exec_driver_sql(
        f"SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0), "
        f"coalesce((SELECT max(id) FROM {table}), 0)) + 1"
    ).scalar_one()
    return int(value)


class SQLiteDialect:
    """See :class:`karr_db.dialects.Dialect`."""

    name = "sqlite"
    sqlalchemy_dialect: Dialect = sqlite.dialect()
    mark = "?"
    raw_json_text = "raw_json"
    stored_nan: str | None = SQLITE_NAN
    lateral_pages = False
    round_trips = False
    # The rows were just inserted, so the transaction has the write lock.
    # A DEFERRED transaction that read, then could not write because another
    # writer committed in between, would lose that race again and again under
    # steady writes; taking the write lock at BEGIN guarantees the rerun progress.
    retries_begin_immediate = True
    supports_roles = False
    backup_by_copy = True
    has_replicas = False
    read_only_options: Mapping[str, Any] = MappingProxyType({SQLITE_BEGIN_OPTION: "AUTOCOMMIT"})
    snapshot_begin = "BEGIN DEFERRED"

    def bulk_insert(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
        *,
        copy: bool = False,
    ) -> None:
        if not rows:
            return
        names = ", ".join(columns)
        marks = ", ".join("?" * len(columns))
        connection.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)

    def bulk_load(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
    ) -> None:
        self.bulk_insert(connection, table, columns, rows)

    def insert_numbered(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
    ) -> list[int]:
        # One ordered RETURNING per row otherwise. The transaction already holds
        # the write lock (it inserted the parents), so nobody else can take ids
        # meanwhile: number the rows from the AUTOINCREMENT counter (or the
        # highest id, whichever is larger) and insert them with explicit ids,
        # which advances the counter.
        if not rows:
            return []
        first = next_id(connection, table)
        ids = list(range(first, first + len(rows)))
        self.bulk_insert(
            connection,
            table,
            ("id", *columns),
            [(i, *row) for i, row in zip(ids, rows, strict=True)],
        )
        return ids

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
        marks = ", ".join("?" * len(columns))
        result = connection.exec_driver_sql(
            f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING", rows
        )
        return max(int(result.rowcount or 0), 0)

    def metric_names_of(
        self, connection: Connection, benchmark_ids: list[int], run_ids: list[str]
    ) -> list[tuple[int, str]]:
        # From the runs' benchmarks to their metrics: a plain join may start at
        # metrics and scan every metric row once per call.
        marks = ", ".join("?" * len(run_ids))
        return _fetch(
            connection,
            "SELECT benchmark_id, metric_name FROM metrics WHERE benchmark_id IN "
            f"(SELECT id FROM benchmarks WHERE run_id IN ({marks}))",
            tuple(run_ids),
        )

    def metric_name_groups(
        self, connection: Connection, benchmark_ids: list[int], run_ids: list[str]
    ) -> list[tuple[int, list[str]]]:
        # SQLite hands rows over in-process; grouping them here costs what a
        # group_concat would, without a separator that a name might contain.
        groups: dict[int, list[str]] = {}
        for benchmark_id, name in self.metric_names_of(connection, benchmark_ids, run_ids):
            groups.setdefault(benchmark_id, []).append(name)
        return list(groups.items())

    def lock_event_log(self, connection: Connection) -> None:
        # The write lock is the log's lock. An INSERT that inserts nothing takes
        # it (waiting out the busy timeout), so a DEFERRED transaction that reads
        # before it writes cannot fail to upgrade its read lock; in a transaction
        # that holds it already (IMMEDIATE, or after a write) it costs no I/O.
        refuse_writes(connection, "taking the event log's lock")
        connection.exec_driver_sql("INSERT INTO events (event_type) SELECT NULL WHERE 0")

    def append_events(
        self,
        connection: Connection,
        rows: list[tuple[str, str | None, str | None]],
        created: datetime,
    ) -> list[int]:
        self.lock_event_log(connection)  # before next_id reads
        first = next_id(connection, "events")
        stamp = format_timestamp(created)
        ids = list(range(first, first + len(rows)))
        connection.exec_driver_sql(
            "INSERT INTO events (id, event_type, source_id, data, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(i, *row, stamp) for i, row in zip(ids, rows, strict=True)],
        )
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
        # No notifications.
        with engine.connect() as connection:
            return poll(connection, found, timeout=timeout, interval=poll_interval)

    def upsert(self, table: Table) -> Any:
        return sqlite.insert(table)

    def extremes(self) -> tuple[Any, Any]:
        # min/max of several arguments; they return NULL if any is (callers coalesce).
        return func.min, func.max

    def median_ranks(
        self, partition: list[Any], finite: ColumnElement[bool], value: ColumnElement[Any]
    ) -> list[Any]:
        return [
            func.row_number()
            .over(partition_by=[*partition, case((finite, 1), else_=0)], order_by=value)
            .label("rn"),
            func.count(value).over(partition_by=partition or None).label("n"),
        ]

    def median(self, inner: Any, value: ColumnElement[Any]) -> ColumnElement[Any]:
        # The mean of the one or two middle finite values, by the row numbers.
        middle = and_(
            inner.c.v.is_not(None),
            or_(inner.c.rn == (inner.c.n + 1) // 2, inner.c.rn == (inner.c.n + 2) // 2),
        )
        return func.avg(case((middle, value), else_=None))

    @contextmanager
    def large_cache(self, connection: Connection, kib: int) -> Iterator[None]:
        # Bulk work on tables and indexes far larger than the default 2 MB page
        # cache keeps their index pages in memory; restored afterwards.
        cache = connection.exec_driver_sql("PRAGMA cache_size").scalar_one()
        connection.exec_driver_sql(f"PRAGMA cache_size = {-kib}")
        try:
            yield
        finally:
            connection.exec_driver_sql(f"PRAGMA cache_size = {int(cache)}")

    @contextmanager
    def references_checked_at_end(self, connection: Connection, table: str) -> Iterator[None]:
        # Migrations run with foreign keys off; elsewhere a check is one primary
        # key lookup in-process.
        yield


def _fetch(connection: Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    """Plain tuples from the driver's cursor, for reads of a million rows, where
    SQLAlchemy's Row objects would be a large part of a re-derivation. Errors leave
    as :func:`~karr_db.dialects.driver_connection` makes them."""
    with driver_connection(connection, sql) as driver:
        return list(driver.execute(sql, params).fetchall())


DIALECT: SQLiteDialect = SQLiteDialect()
