"""Engines and sessions: the one place where connections are configured."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from karr_db.errors import ConcurrencyError, ConnectionLostError, DatabaseURLError, StorageError

__all__ = [
    "DATABASE_URL_ENV",
    "SQLITE_BEGIN_OPTION",
    "default_database_url",
    "make_engine",
    "normalize_url",
    "session_factory",
    "storage_error",
    "transaction",
]

#: Environment variable naming the database; without it the SQLite default is used.
DATABASE_URL_ENV = "KARR_DATABASE_URL"
#: Directory of the default SQLite file (``$KARR_HOME/karr.db``, default ``~/.kitt``).
HOME_ENV = "KARR_HOME"
#: Connection execution option picking SQLite's BEGIN mode (``DEFERRED`` or
#: ``IMMEDIATE``); writers that read before they write want ``IMMEDIATE`` so
#: they take the write lock first instead of failing to upgrade a read lock.
SQLITE_BEGIN_OPTION = "karr_sqlite_begin"
#: How long a SQLite connection waits for a competing writer, in seconds.
SQLITE_BUSY_TIMEOUT = 30.0


def default_sqlite_path() -> Path:
    """Where the default SQLite database lives."""
    home = os.environ.get(HOME_ENV) or "~/.kitt"
    return Path(home).expanduser() / "karr.db"


def default_database_url() -> str:
    """``KARR_DATABASE_URL`` if set, else the default SQLite file."""
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{default_sqlite_path()}"


def normalize_url(url: str | URL) -> URL:
    """Accept plain ``postgresql://`` URLs and route them to psycopg 3."""
    try:
        parsed = make_url(url)
    except ValueError:  # SQLAlchemy's parser: a port that is not a number, an open bracket
        raise DatabaseURLError("invalid database URL: the host or port cannot be read") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL | None = None, **kwargs: Any) -> Engine:
    """Build an engine configured the way every part of karr_db expects."""
    parsed = normalize_url(url if url is not None else default_database_url())
    # SQL logging (echo, or DEBUG on sqlalchemy.engine) and driver error messages
    # would otherwise carry bound values: token hashes, documents.
    kwargs.setdefault("hide_parameters", True)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_engine(parsed, **kwargs)
    elif backend == "postgresql":
        engine = _postgresql_engine(parsed, **kwargs)
    else:
        raise DatabaseURLError(
            f"unsupported database {backend!r}: use a sqlite:// or postgresql:// URL"
        )
    _hide_rows(engine)
    return engine


class _NoRows(logging.Filter):
    """Drops SQLAlchemy's debug records of result rows (``echo="debug"``): rows hold
    token hashes and whole documents, and logs travel further than the database."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Row %r"


def _hide_rows(engine: Engine) -> None:
    logger = getattr(engine.logger, "logger", engine.logger)  # echo wraps the logger
    if isinstance(logger, logging.Logger) and not any(
        isinstance(f, _NoRows) for f in logger.filters
    ):
        logger.addFilter(_NoRows())


def _sqlite_engine(url: URL, **kwargs: Any) -> Engine:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT, **kwargs.pop("connect_args", {})}
    engine = create_engine(url, connect_args=connect_args, **kwargs)

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
            if database and database != ":memory:":
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
        if mode not in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
            raise ValueError(f"{SQLITE_BEGIN_OPTION} must be DEFERRED, IMMEDIATE or EXCLUSIVE")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _postgresql_engine(url: URL, **kwargs: Any) -> Engine:
    connect_args = {"options": "-c TimeZone=UTC", **kwargs.pop("connect_args", {})}
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("json_serializer", partial(json.dumps, allow_nan=False, ensure_ascii=False))
    return create_engine(url, connect_args=connect_args, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (DTOs are built from them)."""
    return sessionmaker(engine, expire_on_commit=False)


#: PostgreSQL SQLSTATEs after which the server has rolled the transaction back
#: and re-running it may succeed: serialization_failure, deadlock_detected,
#: lock_not_available.
_PG_CONFLICTS = frozenset({"40001", "40P01", "55P03"})
#: admin_shutdown, crash_shutdown, cannot_connect_now (class 08 is checked apart).
_PG_CONNECTION = frozenset({"57P01", "57P02", "57P03"})


def storage_error(operation: str, exc: DBAPIError, *, during_commit: bool = False) -> StorageError:
    """The layer's error for a driver error: retryable subclasses for passing causes.

    Callers then decide on retrying from the type alone (see :mod:`karr_db.retry`)
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
def transaction(
    engine: Engine, *, immediate: bool = False, operation: str = "a transaction"
) -> Iterator[Session]:
    """One session in one transaction: committed on success, rolled back on error.

    ``immediate`` takes SQLite's write lock at BEGIN (a no-op on PostgreSQL).
    Driver errors leave as :class:`~karr_db.errors.StorageError` (retryable
    ones as :class:`~karr_db.errors.ConcurrencyError` or
    :class:`~karr_db.errors.ConnectionLostError`), so callers of the
    repositories never catch driver exceptions; :func:`karr_db.retry.run_transaction`
    re-runs a whole transaction on the retryable ones.
    """
    with Session(engine, expire_on_commit=False) as session:
        try:
            with session.begin():
                try:
                    if immediate:
                        # The first connection a session procures gets these
                        # options before its BEGIN is emitted.
                        session.connection(execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"})
                    yield session
                except DBAPIError as exc:
                    raise storage_error(operation, exc) from exc
        except DBAPIError as exc:  # raised by COMMIT: the outcome may be unknown
            raise storage_error(operation, exc, during_commit=True) from exc
