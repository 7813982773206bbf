"""Deprecated: the old home of engines and transactions, kept for one release.

Engines, URLs and connection set-up moved to :mod:`karr_db.engine`, units of
work to :mod:`karr_db.uow`. The names here are those modules' (re-exported),
except :func:`transaction`, which keeps its old shape: it yields the unit of
work's *session*, where :func:`karr_db.transaction` yields the
:class:`~karr_db.uow.UnitOfWork` itself. The unused ``session_factory`` is gone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from karr_db import uow
from karr_db.engine import (
    DATABASE_URL_ENV,
    HOME_ENV,
    READ_ONLY_OPTION,
    SQLITE_BEGIN_OPTION,
    SQLITE_BUSY_TIMEOUT,
    default_database_url,
    default_sqlite_path,
    earlier_sqlite_path,
    make_engine,
    normalize_url,
    sqlite_path,
    storage_error,
)

__all__ = [
    "DATABASE_URL_ENV",
    "HOME_ENV",
    "READ_ONLY_OPTION",
    "SQLITE_BEGIN_OPTION",
    "SQLITE_BUSY_TIMEOUT",
    "default_database_url",
    "default_sqlite_path",
    "earlier_sqlite_path",
    "make_engine",
    "normalize_url",
    "sqlite_path",
    "storage_error",
    "transaction",
]


@contextmanager
def transaction(
    engine: Engine,
    *,
    immediate: bool = False,
    readonly: bool = False,
    operation: str = "a transaction",
) -> Iterator[Session]:
    """:func:`karr_db.uow.transaction`, yielding its session as this function always did."""
    with uow.transaction(
        engine, immediate=immediate, readonly=readonly, operation=operation
    ) as unit:
        yield unit.session
