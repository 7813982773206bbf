"""Deprecated: the old home of :func:`run_transaction`, kept for one release.

The retry loop is :func:`karr_db.uow.run_transaction` (also
``karr_db.run_transaction``), whose ``work`` receives the
:class:`~karr_db.uow.UnitOfWork`. This one keeps its old shape: ``work``
receives the unit of work's session. Retries, bounds and the errors are the
same, since it is the same loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from karr_db import uow
from karr_db.errors import TransientStorageError
from karr_db.uow import BACKOFF_BASE, BACKOFF_CAP, DEFAULT_ATTEMPTS, DEFAULT_DEADLINE

__all__ = ["BACKOFF_BASE", "BACKOFF_CAP", "DEFAULT_ATTEMPTS", "DEFAULT_DEADLINE", "run_transaction"]

T = TypeVar("T")


def run_transaction(
    engine: Engine,
    work: Callable[[Session], T],
    *,
    immediate: bool = False,
    idempotent: bool = False,
    attempts: int = DEFAULT_ATTEMPTS,
    deadline: float = DEFAULT_DEADLINE,
    operation: str = "a transaction",
    on_retry: Callable[[int, TransientStorageError], None] | None = None,
) -> T:
    """:func:`karr_db.uow.run_transaction` with ``work(session)``, as this function always had."""
    return uow.run_transaction(
        engine,
        lambda unit: work(unit.session),
        immediate=immediate,
        idempotent=idempotent,
        attempts=attempts,
        deadline=deadline,
        operation=operation,
        on_retry=on_retry,
    )
