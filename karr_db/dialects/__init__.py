"""The dialect seam: every dialect-specific statement outside DDL and the TypeDecorators.

Repositories and services never ask ``dialect.name``; they ask
:func:`for_connection` for the :class:`Dialect` of their connection and call
it. Two implementations, :mod:`.sqlite` and :mod:`.postgresql`, each a plain
module-level object (Prefect's ``query_components`` idea without its
injection machinery). Anything that would branch on the dialect belongs here,
so adding a backend, or reading what differs between the two, means reading
this package only. The statements are exactly the ones the repositories ran
before (see tests/integration/test_results_statements.py and docs/performance.md).

An implementation is imported when its dialect is first asked for
(:func:`for_dialect`), so a SQLite user never loads SQLAlchemy's PostgreSQL
dialect (a tenth of ``karr-db list``'s start-up) and the reverse.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import datetime
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from sqlalchemy import ColumnElement, Connection, Engine, Table, Text
from sqlalchemy.engine import Dialect as SQLAlchemyDialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from karr_db.engine import READ_ONLY_OPTION
from karr_db.errors import DatabaseURLError, StorageError

__all__ = [
    "EVENT_LOG_LOCK_KEY",
    "Dialect",
    "arrays",
    "for_connection",
    "for_dialect",
    "group_digest",
    "poll",
    "read_only",
    "refuse_writes",
    "snapshot",
]

#: Advisory lock key serialising event appends on PostgreSQL ("KEVT" in ASCII);
#: distinct from the migration lock so that migrations and appends do not
#: contend. ``karr_append_events`` takes the same key (the frozen revisions'
#: :data:`karr_db.migrations.frozen.EVENTS_LOCK_KEY`). Kept
#: here, not in :mod:`.postgresql`, so that naming it loads no dialect.
EVENT_LOG_LOCK_KEY = 0x4B455654


class Dialect(Protocol):
    """What differs between SQLite and PostgreSQL, as operations the callers need."""

    #: SQLAlchemy's name of the dialect ("sqlite", "postgresql").
    name: str
    #: SQLAlchemy's dialect object, to compile DDL or statements without a connection.
    sqlalchemy_dialect: SQLAlchemyDialect
    #: The driver's placeholder for ``exec_driver_sql``.
    mark: str
    #: ``raw_json`` read back as JSON text by a driver-level SELECT.
    raw_json_text: str
    #: What a NaN metric value is handed to the driver as (``None``: the float itself).
    stored_nan: str | None
    #: Whether run pages join the first hardware row with LATERAL.
    lateral_pages: bool
    #: Whether every statement is a round trip to a server: then a read of several
    #: kinds of rows (a run's full detail) is one wider statement, where an
    #: in-process database reads the narrow ones faster.
    round_trips: bool
    #: Whether a retry after a lost write race should BEGIN IMMEDIATE.
    retries_begin_immediate: bool
    #: Whether database roles and grants exist.
    supports_roles: bool
    #: Whether ``karr-db backup`` copies the database (a file) itself, or points to pg_dump.
    backup_by_copy: bool
    #: Whether a hot standby of the database can serve read-only units of work.
    has_replicas: bool
    #: Execution options of a read-only unit of work's connection: each statement
    #: is its own transaction, so a one-statement read sends no BEGIN or COMMIT
    #: (PostgreSQL: psycopg's autocommit, one round trip; SQLite: no BEGIN).
    read_only_options: Mapping[str, Any]
    #: The BEGIN of a read that needs one snapshot over several statements
    #: (:func:`snapshot`): REPEATABLE READ on PostgreSQL, whose READ COMMITTED
    #: takes a snapshot per statement.
    snapshot_begin: str

    def bulk_insert(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
        *,
        copy: bool = False,
    ) -> None:
        """Insert driver-ready rows in one statement (``copy``: COPY where it exists)."""

    def bulk_load(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
    ) -> None:
        """Insert many driver-ready rows of plain values (int, str, float, None) by the
        cheapest path there is: re-derivation's millions of metric rows."""

    def insert_numbered(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
    ) -> list[int]:
        """Insert rows, drawing their serial ids; the ids in row order."""

    def insert_ignore(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
    ) -> int:
        """Insert rows, skipping conflicting ones (``ON CONFLICT DO NOTHING``); how many went in."""

    def metric_names_of(
        self, connection: Connection, benchmark_ids: list[int], run_ids: list[str]
    ) -> list[tuple[int, str]]:
        """``(benchmark_id, metric_name)`` of the metric rows of some benchmarks, which
        belong to ``run_ids``: by the cheapest plan each database has for it."""

    def metric_name_groups(
        self, connection: Connection, benchmark_ids: list[int], run_ids: list[str]
    ) -> Iterable[tuple[int, Sequence[str]]]:
        """The metric names of each of some benchmarks (which belong to ``run_ids``) that
        has any, one ``(benchmark_id, names)`` per benchmark: what :meth:`metric_names_of`
        gives, grouped, where the database can send it grouped more cheaply."""

    def lock_event_log(self, connection: Connection) -> None:
        """Take the event log's append lock until the transaction ends."""

    def append_events(
        self,
        connection: Connection,
        rows: list[tuple[str, str | None, str | None]],
        created: datetime,
    ) -> list[int]:
        """Append ``(event_type, source_id, data JSON text)`` rows, taking the log's lock
        first; their ids."""

    def wait_for_events(
        self,
        engine: Engine,
        found: Callable[[Connection], bool],
        *,
        channel: str,
        timeout: float,
        poll_interval: float,
    ) -> bool:
        """Block until ``found`` (LISTEN on ``channel``, or :func:`poll` every
        ``poll_interval`` s), at most ``timeout`` s."""

    def upsert(self, table: Table) -> Any:
        """The dialect's ``INSERT`` construct, which offers ``ON CONFLICT ..``."""

    def extremes(self) -> tuple[Any, Any]:
        """``least``/``greatest`` of several arguments (NULL-skipping or not, see callers)."""

    def median_ranks(
        self, partition: list[Any], finite: ColumnElement[bool], value: ColumnElement[Any]
    ) -> list[Any]:
        """Window columns the median needs in the inner query (none where it is built in)."""

    def median(self, inner: Any, value: ColumnElement[Any]) -> ColumnElement[Any]:
        """The median of ``inner.c.v`` per group, over :meth:`median_ranks`' columns."""

    def large_cache(self, connection: Connection, kib: int) -> AbstractContextManager[None]:
        """A larger page cache for one connection's bulk work, where it is tunable."""

    def references_checked_at_end(
        self, connection: Connection, table: str
    ) -> AbstractContextManager[None]:
        """Foreign keys of ``table`` checked once, on leaving normally, instead of row by
        row, where that is cheaper for bulk inserts. Only for a caller that holds
        the tables alone anyway (a migration), since it locks them, and that rolls
        its transaction back on an error: the keys are not restored then."""


def read_only(connection: Connection) -> bool:
    """Whether ``connection`` is a read-only unit of work's
    (:data:`~karr_db.engine.READ_ONLY_OPTION`)."""
    return bool(connection.get_execution_options().get(READ_ONLY_OPTION, False))


def refuse_writes(connection: Connection, operation: str = "writing") -> None:
    """Refuse a write on a read-only unit of work's connection with the layer's
    error, before any SQL: on PostgreSQL its statements run in autocommit, where
    the server would not refuse one. Every repository write takes the event
    log's lock first (:meth:`Dialect.lock_event_log` calls this)."""
    if read_only(connection):
        raise StorageError(operation, "a read-only unit of work cannot write")


@contextmanager
def snapshot(connection: Connection) -> Iterator[None]:
    """The statements inside read one snapshot of the database.

    A read-only unit of work runs each statement on its own (see
    :mod:`karr_db.uow`); a read of several statements, or a streamed one (a
    server-side cursor needs a transaction on PostgreSQL), runs them in this
    explicit read-only transaction. Reads inside one another, or streamed side
    by side, share it: it ends when the last of them does. Inside a writing unit
    of work, whose transaction is open already, it does nothing.
    """
    if not read_only(connection):
        yield
        return
    users = _SNAPSHOT_USERS.get(connection, 0)
    if users == 0:
        connection.exec_driver_sql(for_connection(connection).snapshot_begin)
    _SNAPSHOT_USERS[connection] = users + 1
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        left = _SNAPSHOT_USERS.pop(connection) - 1
        if left:
            _SNAPSHOT_USERS[connection] = left
        elif failed:
            # The error that brought us here is the one to raise; a connection that
            # cannot roll back (lost) is discarded by the pool anyway.
            with suppress(Exception):
                connection.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
        else:
            connection.exec_driver_sql("COMMIT")


#: How many reads are inside the :func:`snapshot` of each connection (checkouts, not
#: pooled connections: a snapshot a caller left open ends when its unit of work does).
_SNAPSHOT_USERS: WeakKeyDictionary[Connection, int] = WeakKeyDictionary()


def poll(
    connection: Connection, found: Callable[[Connection], bool], *, timeout: float, interval: float
) -> bool:
    """Look with ``found`` every ``interval`` seconds, one short transaction per look,
    until it answers ``True`` or ``timeout`` seconds have passed; its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        with connection.begin():
            if found(connection):
                return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(interval, remaining))


@contextmanager
def driver_connection(connection: Connection, statement: str) -> Iterator[Any]:
    """The driver's own connection, to run ``statement`` on (``COPY``, plain-tuple
    reads). A driver error leaves as SQLAlchemy would have raised it, so the layer's
    translation applies: no parameters in its text (the engine hides them), and a
    lost connection invalidated so that the pool does not hand it out again."""
    driver = connection.connection.driver_connection
    assert driver is not None
    dialect = connection.dialect
    try:
        yield driver
    except dialect.loaded_dbapi.Error as exc:
        lost = dialect.is_disconnect(exc, connection.connection.dbapi_connection, None)
        if lost:
            connection.invalidate(exc)
        error: StatementError = DBAPIError.instance(
            statement,
            None,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            dialect=dialect,
            connection_invalidated=lost,
        )
        raise error from exc


def arrays(rows: Sequence[tuple[Any, ...]]) -> tuple[list[Any], ...]:
    """Rows turned into one list per column (array parameters, one per column)."""
    return tuple(list(column) for column in zip(*rows, strict=True))


class group_digest(FunctionElement[str]):
    """A group key short enough for an index: the text itself on SQLite, whose
    index entries have no size limit, its MD5 on PostgreSQL, whose btree entries
    must stay under 2704 bytes while a key of several bounded texts may not
    (compiled in :mod:`.postgresql`)."""

    type = Text()
    inherit_cache = True
    name = "group_digest"


@compiles(group_digest)
def _group_digest_default(element: group_digest, compiler: Any, **kw: Any) -> str:
    # A dialect whose implementation is not loaded yet may have a rule of its own
    # (PostgreSQL's md5, registered by :mod:`.postgresql`): load it and compile
    # again, so no statement compiles before its dialect's rule exists.
    name = compiler.dialect.name
    if name in _IMPLEMENTATIONS and name not in _LOADED:
        for_dialect(name)
        return str(compiler.process(element, **kw))
    return str(compiler.process(element.clauses, **kw))


#: The module implementing each dialect, imported on first use.
_IMPLEMENTATIONS: dict[str, str] = {
    "sqlite": "karr_db.dialects.sqlite",
    "postgresql": "karr_db.dialects.postgresql",
}
_LOADED: dict[str, Dialect] = {}


def for_dialect(name: str) -> Dialect:
    """The seam for SQLAlchemy's dialect ``name``; only SQLite and PostgreSQL exist.

    The implementation is imported on the first call for ``name`` (which also
    registers its compilation rules, such as :class:`group_digest`'s).
    """
    try:
        return _LOADED[name]
    except KeyError:
        pass
    module = _IMPLEMENTATIONS.get(name)
    if module is None:
        raise DatabaseURLError(
            f"unsupported database {name!r}: karr_db supports sqlite and postgresql"
        )
    dialect: Dialect = importlib.import_module(module).DIALECT
    _LOADED[name] = dialect
    return dialect


def for_connection(bind: Any) -> Dialect:
    """The seam for a connection, engine or session (anything bound to a dialect)."""
    dialect = getattr(bind, "dialect", None)
    if dialect is None:  # a Session
        dialect = bind.get_bind().dialect
    return for_dialect(dialect.name)
