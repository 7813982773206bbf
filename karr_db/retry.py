"""Bounded re-running of whole transactions after transient database failures.

A deadlock, a serialization failure or a SQLite lock that outlived the busy
timeout rolls the transaction back; so does a lost connection before COMMIT.
In each case nothing was written, and the only correct recovery is to run the
*whole* unit of work again from its first statement (re-running one statement
would act on reads made in a transaction that no longer exists).
:func:`run_transaction` does that, a bounded number of times and for a
bounded time.

What it never does: re-run work whose outcome is unknown. A connection lost
*during* COMMIT may or may not have committed; that error is re-raised unless
the caller declares the work ``idempotent`` (saving a result document is: its
run id comes from its content, so a second save finds the first).

On SQLite a rerun after a lock conflict begins IMMEDIATE: the conflict means a
read-then-write transaction lost the race for the write lock, and taking the
lock first (waiting out the busy timeout) is what guarantees progress.

``work`` must have no effects outside the database, since it may run more than
once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from karr_db.db import transaction
from karr_db.dialects import for_connection
from karr_db.errors import ConcurrencyError, ConnectionLostError, TransientStorageError

__all__ = ["DEFAULT_ATTEMPTS", "DEFAULT_DEADLINE", "run_transaction"]

T = TypeVar("T")

#: Runs of the work at most (the first one included).
DEFAULT_ATTEMPTS = 8
#: No new attempt starts after this many seconds.
DEFAULT_DEADLINE = 60.0
#: Back-off before attempt n+1 is uniform in [0, min(cap, base * 2**n)] ("full jitter"),
#: so competing retriers spread out instead of colliding again.
BACKOFF_BASE = 0.02
BACKOFF_CAP = 1.0

log = logging.getLogger(__name__)


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
    """``work(session)`` in its own transaction, committed; re-run on transient failures.

    Retries :class:`~karr_db.errors.ConcurrencyError` and
    :class:`~karr_db.errors.ConnectionLostError` (the latter during COMMIT only
    when ``idempotent``), at most ``attempts`` runs and no new run after
    ``deadline`` seconds; then the last error is raised. Every other error is
    raised at once. ``on_retry(attempt, error)`` is told of each retry.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    started = time.monotonic()
    attempt = 1
    while True:
        try:
            with transaction(engine, immediate=immediate, operation=operation) as session:
                return work(session)
        except TransientStorageError as exc:
            if isinstance(exc, ConnectionLostError) and exc.during_commit and not idempotent:
                raise  # it may have committed: running it again could do it twice
            if attempt >= attempts or time.monotonic() - started >= deadline:
                raise
            log.info(
                "retrying %s after a transient failure (attempt %d): %s", operation, attempt, exc
            )
            if on_retry is not None:
                on_retry(attempt, exc)
            if isinstance(exc, ConcurrencyError) and for_connection(engine).retries_begin_immediate:
                # A DEFERRED transaction that read, then could not write because
                # another writer committed in between, would lose that race again
                # and again under steady writes; taking the write lock at BEGIN
                # (waiting out the busy timeout) guarantees the rerun progress.
                immediate = True
            time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
            attempt += 1
