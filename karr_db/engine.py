"""Engines: URLs, connection set-up, and what a driver's error means.

The one place where connections are configured (SQLite pragmas and BEGIN
modes; PostgreSQL's pre-ping and what a connection pooler cannot carry) and
where a driver exception is classified into the layer's errors
(:func:`storage_error`). Units of work and their error translation live in
:mod:`karr_db.uow`, one layer up.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError

from karr_db.config import configured
from karr_db.errors import (
    ConcurrencyError,
    ConnectionLostError,
    DatabaseURLError,
    MissingDatabaseError,
    StorageError,
)

__all__ = [
    "DATABASE_URL_ENV",
    "POOLER_PARAMETER",
    "READ_ONLY_OPTION",
    "REPLICA_URL_ENV",
    "SQLITE_BEGIN_OPTION",
    "behind_pooler",
    "default_database_url",
    "default_replica_url",
    "make_engine",
    "normalize_url",
    "sqlite_path",
    "storage_error",
    "translated",
]

#: Environment variable naming the database; without it the SQLite default is used.
DATABASE_URL_ENV = "KARR_DATABASE_URL"
#: Environment variable naming a PostgreSQL hot standby for read-only units of work.
REPLICA_URL_ENV = "KARR_REPLICA_URL"
#: Query parameter of a PostgreSQL URL saying whether a transaction-mode pooler
#: (PgBouncer) stands between karr_db and the server: ``true``, ``false`` or
#: ``auto`` (the default: each new connection is asked, see :func:`make_engine`).
#: karr_db removes it before connecting.
POOLER_PARAMETER = "karr_pooler"
#: Directory of the default SQLite file (``$KARR_HOME/karr.db``, default ``~/.kitt``).
HOME_ENV = "KARR_HOME"
#: Connection execution option picking SQLite's BEGIN mode (``DEFERRED`` or
#: ``IMMEDIATE``); writers that read before they write want ``IMMEDIATE`` so
#: they take the write lock first instead of failing to upgrade a read lock.
#: ``AUTOCOMMIT`` sends no BEGIN: each statement is its own transaction (the
#: read-only units of work, see :mod:`karr_db.uow`).
SQLITE_BEGIN_OPTION = "karr_sqlite_begin"
#: Connection execution option marking a read-only unit of work's connection:
#: the layer refuses a repository write on it before any SQL
#: (:func:`karr_db.dialects.refuse_writes`), and SQLite's ``query_only`` pragma
#: refuses any other write. Readers need no write lock, and a write in them is
#: refused on both dialects alike instead of failing only under contention.
READ_ONLY_OPTION = "karr_read_only"
#: How long a SQLite connection waits for a competing writer, in seconds.
SQLITE_BUSY_TIMEOUT = 30.0


def default_sqlite_path() -> Path:
    """Where the default SQLite database lives."""
    home = os.environ.get(HOME_ENV) or "~/.kitt"
    return Path(home).expanduser() / "karr.db"


def earlier_sqlite_path() -> Path:
    """Where the earlier system kept its database by default, beside ours."""
    return default_sqlite_path().with_name("kitt.db")


def default_database_url() -> str:
    """The database when none is given: ``KARR_DATABASE_URL`` if set, else the
    configuration file's ``database.url`` (:mod:`karr_db.config`), else the
    default SQLite file."""
    return (
        os.environ.get(DATABASE_URL_ENV)
        or configured("database.url")
        or f"sqlite:///{default_sqlite_path()}"
    )


def default_replica_url(primary: str | URL | None = None) -> str | None:
    """``KARR_REPLICA_URL`` if set, and (given the ``primary`` URL) only for a
    PostgreSQL primary: a SQLite file named beside the variable has no standby."""
    url = os.environ.get(REPLICA_URL_ENV) or None
    on_sqlite = primary is not None and normalize_url(primary).get_backend_name() != "postgresql"
    return None if on_sqlite else url


def normalize_url(url: str | URL) -> URL:
    """Accept plain ``postgresql://`` URLs and route them to psycopg 3."""
    try:
        parsed = make_url(url)
    except ValueError:  # SQLAlchemy's parser: a port that is not a number, an open bracket
        raise DatabaseURLError("invalid database URL: the host or port cannot be read") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(
    url: str | URL | None = None,
    *,
    read_only: bool = False,
    pooler: bool | None = None,
    **kwargs: Any,
) -> Engine:
    """Build an engine configured the way every part of karr_db expects.

    ``read_only`` opens a SQLite file read-only and refuses one that does not
    exist (:class:`~karr_db.errors.MissingDatabaseError`), so that reading a
    mistyped path never leaves an empty database there; PostgreSQL ignores it
    (the server's grants decide).

    ``pooler`` (PostgreSQL; else the URL's ``karr_pooler``, else detected) says
    whether a transaction-mode pooler sits in front of the server. Behind one,
    a connection prepares no statements (the next transaction may run on
    another server connection, where they do not exist) and
    :func:`~karr_db.repositories.events.wait_for_events` polls instead of
    LISTENing. Detection costs one query per new connection: a pooler answers
    with a backend id of its own, not the id of the server process it forwards
    to. Nothing else differs: karr_db sends no startup options and sets nothing
    for a session, only for a transaction.
    """
    parsed = normalize_url(url if url is not None else default_database_url())
    parsed, pooler = _pooler_setting(parsed, pooler)
    # SQL logging (echo, or DEBUG on sqlalchemy.engine) and driver error messages
    # would otherwise carry bound values: token hashes, documents.
    kwargs.setdefault("hide_parameters", True)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_engine(parsed, read_only=read_only, **kwargs)
    elif backend == "postgresql":
        engine = _postgresql_engine(parsed, pooler=pooler, **kwargs)
    else:
        raise DatabaseURLError(
            f"unsupported database {backend!r}: use a sqlite:// or postgresql:// URL"
        )
    # Rows in SQLAlchemy's debug log (echo="debug") hold token hashes and whole
    # documents, and logs travel further than the database.
    logger = getattr(engine.logger, "logger", engine.logger)  # echo wraps the logger
    if isinstance(logger, logging.Logger) and not any(
        isinstance(f, _NoRows) for f in logger.filters
    ):
        logger.addFilter(_NoRows())
    return engine


_SETTINGS = {"true": True, "false": False, "auto": None}


def _pooler_setting(url: URL, pooler: bool | None) -> tuple[URL, bool | None]:
    """The URL without :data:`POOLER_PARAMETER`, and the setting (the argument wins)."""
    if POOLER_PARAMETER not in url.query:
        return url, pooler
    value = url.query[POOLER_PARAMETER]
    text = value if isinstance(value, str) else ",".join(value)
    if text.lower() not in _SETTINGS:
        raise DatabaseURLError(
            f"invalid {POOLER_PARAMETER}={text!r} in the database URL: use true, false or auto"
        )
    if url.get_backend_name() != "postgresql":
        raise DatabaseURLError(f"{POOLER_PARAMETER} applies to postgresql:// URLs only")
    if pooler is None:
        pooler = _SETTINGS[text.lower()]
    return url.difference_update_query([POOLER_PARAMETER]), pooler


class _NoRows(logging.Filter):
    """Drops SQLAlchemy's debug records of result rows (``echo="debug"``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Row %r"


def sqlite_path(url: str | URL) -> Path | None:
    """The file a SQLite URL names (``None`` for PostgreSQL, memory or URI forms)."""
    parsed = normalize_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _sqlite_engine(url: URL, *, read_only: bool = False, **kwargs: Any) -> Engine:
    database = url.database
    path = sqlite_path(url)
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT, **kwargs.pop("connect_args", {})}
    if read_only and path is not None:
        if not path.is_file():
            raise MissingDatabaseError(str(path.absolute()))
        # mode=ro: SQLite itself refuses to create or write the file. A file: URI
        # (percent-encoded by as_uri) keeps any character of the path literal.
        uri = f"{path.resolve().as_uri()}?mode=ro"
        timeout = connect_args["timeout"]
        kwargs["creator"] = lambda: sqlite3.connect(
            uri, uri=True, timeout=timeout, check_same_thread=False
        )
    elif path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    writable = not (read_only and path is not None)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite, which otherwise commits
        # before DDL and never BEGINs for it; the "begin" hook below issues
        # BEGIN itself, so DDL and SAVEPOINTs become transactional.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")  # cascades do nothing without it
            if database and database != ":memory:" and writable:
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        options = connection.get_execution_options()
        mode = options.get(SQLITE_BEGIN_OPTION, "DEFERRED")
        if mode not in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE", "AUTOCOMMIT"):
            raise ValueError(
                f"{SQLITE_BEGIN_OPTION} must be DEFERRED, IMMEDIATE, EXCLUSIVE or AUTOCOMMIT"
            )
        # query_only belongs to the connection, not the transaction: set it
        # whenever it must change, so a pooled connection never stays read only.
        read_only = bool(options.get(READ_ONLY_OPTION, False))
        if connection.info.get(READ_ONLY_OPTION, False) != read_only:
            connection.exec_driver_sql(f"PRAGMA query_only = {int(read_only)}")
            connection.info[READ_ONLY_OPTION] = read_only
        if mode == "AUTOCOMMIT":
            return  # pysqlite sends no BEGIN of its own (isolation_level None)
        statement = f"BEGIN {mode}"
        # Straight to the driver: through exec_driver_sql this BEGIN was a fifth of
        # an empty unit of work (execution context, result, events). Its errors
        # (SQLITE_BUSY after the busy timeout) still leave as SQLAlchemy's.
        try:
            connection.connection.dbapi_connection.execute(statement)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(
                statement,
                None,
                exc,
                sqlite3.Error,
                hide_parameters=True,
                dialect=connection.dialect,
            ) from exc

    return engine


#: A pooled PostgreSQL connection idle for longer than this (seconds) is pinged at
#: checkout before it is handed out; see :func:`_ping_idle_connections`.
PING_AFTER_IDLE = 1.0
_IDLE_SINCE = "karr_idle_since"
#: Pooled connection ``info`` key: whether the connection goes through a
#: transaction-mode pooler (see :func:`behind_pooler`).
_BEHIND_POOLER = "karr_behind_pooler"


def behind_pooler(connection: Connection) -> bool:
    """Whether ``connection`` reaches PostgreSQL through a transaction-mode pooler
    (configured or detected when it connected; always ``False`` on SQLite)."""
    return bool(connection.connection.info.get(_BEHIND_POOLER, False))


def _postgresql_engine(url: URL, *, pooler: bool | None = None, **kwargs: Any) -> Engine:
    # No startup ``options`` (a pooler refuses them): times do not depend on the
    # session's TimeZone, since values are bound with their offset and every
    # TIMESTAMPTZ read is turned into UTC (models.types.UTCDateTime).
    ping_idle = "pool_pre_ping" not in kwargs
    kwargs.setdefault("json_serializer", partial(json.dumps, allow_nan=False, ensure_ascii=False))
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _pooler_safe(dbapi_connection: Any, record: Any) -> None:
        behind = pooler if pooler is not None else _answers_for_another_backend(dbapi_connection)
        record.info[_BEHIND_POOLER] = behind
        if behind:
            dbapi_connection.prepare_threshold = None

    if ping_idle:
        _ping_idle_connections(engine)
    else:

        @event.listens_for(engine, "checkout")
        def _close_ping_transaction(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            # SQLAlchemy's ping leaves psycopg in the transaction its SELECT 1
            # opened; closed here, as autocommit (a read-only unit of work) can
            # only be switched on an idle connection.
            from psycopg.pq import TransactionStatus

            if dbapi_connection.info.transaction_status != TransactionStatus.IDLE:
                dbapi_connection.rollback()

    return engine


def _answers_for_another_backend(dbapi_connection: Any) -> bool:
    """Whether the server process running our queries is not the one the connection
    greeted us with: PgBouncer (and other poolers) send a backend key of their own."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    finally:
        cursor.close()
    dbapi_connection.rollback()
    return bool(pid != dbapi_connection.info.backend_pid)


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection at checkout only when it sat idle for
    :data:`PING_AFTER_IDLE` seconds: a dead one (server restarted, backend
    terminated while idle) is replaced before the caller sees it.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: two round trips
    (psycopg's implicit BEGIN and ``SELECT 1``) on top of a read's one, most of
    what a short read cost on loopback. A connection checked in a moment ago is
    alive unless its backend died in that moment; then the first statement fails
    with :class:`~karr_db.errors.ConnectionLostError` (retryable,
    :func:`karr_db.uow.run_transaction` re-runs it) and SQLAlchemy invalidates
    the pool, so the next unit of work connects afresh. A server restart takes
    longer than the threshold, so every connection that lived through one is pinged.
    Pass ``pool_pre_ping=True`` to :func:`make_engine` to ping on every checkout.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return  # just connected, or in use a moment ago
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_connection, None):
                # The pool discards this connection and checks out another (or a new one).
                raise DisconnectionError(str(exc)) from exc
            raise


#: PostgreSQL SQLSTATEs after which the server has rolled the transaction back
#: and re-running it may succeed: serialization_failure, deadlock_detected,
#: lock_not_available.
_PG_CONFLICTS = frozenset({"40001", "40P01", "55P03"})
#: admin_shutdown, crash_shutdown, cannot_connect_now (class 08 is checked apart).
_PG_CONNECTION = frozenset({"57P01", "57P02", "57P03"})


def storage_error(operation: str, exc: DBAPIError, *, during_commit: bool = False) -> StorageError:
    """The layer's error for a driver error: retryable subclasses for passing causes.

    Callers then decide on retrying from the type alone (see :func:`karr_db.uow.run_transaction`)
    instead of parsing dialect-specific codes and messages.
    """
    orig = exc.orig
    detail = str(orig).strip() or type(orig).__name__
    sqlstate = getattr(orig, "sqlstate", None)
    driver_module = type(orig).__module__ or ""
    if (
        exc.connection_invalidated
        or (sqlstate is not None and (sqlstate.startswith("08") or sqlstate in _PG_CONNECTION))
        # psycopg raises OperationalError without a SQLSTATE only for a broken or
        # refused connection: the server never answered.
        or (
            driver_module.startswith("psycopg")
            and type(orig).__name__ == "OperationalError"
            and sqlstate is None
        )
    ):
        return ConnectionLostError(operation, detail, during_commit=during_commit)
    if sqlstate in _PG_CONFLICTS:
        return ConcurrencyError(operation, detail)
    sqlite_name = str(getattr(orig, "sqlite_errorname", ""))
    if sqlite_name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or detail in (
        "database is locked",
        "database table is locked",
    ):
        return ConcurrencyError(operation, detail)
    return StorageError(operation, detail)


@contextmanager
def translated(operation: str, *, during_commit: bool = False) -> Iterator[None]:
    """Driver errors raised inside leave as the layer's (:func:`storage_error`).

    The one place driver errors are translated: units of work
    (:mod:`karr_db.uow`) and repository reads run under it. ``during_commit``
    marks a lost connection's outcome as unknown.
    """
    try:
        yield
    except DBAPIError as exc:
        raise storage_error(operation, exc, during_commit=during_commit) from exc
