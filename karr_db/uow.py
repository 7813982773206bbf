"""The unit of work: one transaction, its repositories, and the one error translation.

Every way karr_db opens a transaction for a caller ends here::

    with transaction(engine, immediate=True) as uow:  # karr_db.transaction
        uow.results.save(document)
    run_transaction(engine, lambda uow: uow.results.save(document), idempotent=True)
    with Database(url) as db, db.unit_of_work() as uow:  # checks the schema first
        uow.events.append(...)

All three yield a :class:`UnitOfWork`, and driver errors leave all three the
same way, through :func:`translated`: as :class:`~karr_db.errors.StorageError`,
or its retryable subclasses :class:`~karr_db.errors.ConcurrencyError` and
:class:`~karr_db.errors.ConnectionLostError` (:func:`karr_db.engine.storage_error`
decides which). So callers of the repositories never catch a driver exception.

:func:`run_transaction` re-runs a whole unit of work after a transient failure.
A deadlock, a serialization failure or a SQLite lock that outlived the busy
timeout rolls the transaction back; so does a lost connection before COMMIT.
In each case nothing was written, and the only correct recovery is to run the
*whole* unit of work again from its first statement (re-running one statement
would act on reads made in a transaction that no longer exists). It never
re-runs work whose outcome is unknown: a connection lost *during* COMMIT may
or may not have committed, so that error is re-raised unless the caller
declares the work ``idempotent`` (saving a result document is: its run id
comes from its content, so a second save finds the first). ``work`` must have
no effects outside the database, since it may run more than once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from karr_db.dialects import for_connection
from karr_db.engine import READ_ONLY_OPTION, SQLITE_BEGIN_OPTION, translated
from karr_db.errors import (
    ConcurrencyError,
    ConnectionLostError,
    StorageError,
    TransientStorageError,
)

if TYPE_CHECKING:
    from karr_db.repositories.agent_engines import AgentEnginesRepository
    from karr_db.repositories.agents import AgentsRepository
    from karr_db.repositories.campaigns import CampaignsRepository
    from karr_db.repositories.engine_profiles import EngineProfilesRepository
    from karr_db.repositories.events import EventsRepository
    from karr_db.repositories.logs import CampaignLogsRepository, QuickTestLogsRepository
    from karr_db.repositories.quick_tests import QuickTestsRepository
    from karr_db.repositories.results import ResultsRepository
    from karr_db.repositories.settings import AgentSettingsRepository, WebSettingsRepository

__all__ = [
    "DEFAULT_ATTEMPTS",
    "DEFAULT_DEADLINE",
    "UnitOfWork",
    "run_transaction",
    "transaction",
]

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


class UnitOfWork:
    """One unit of work's connection, its session, and the repositories that work in it.

    A writing unit of work is one ORM :class:`~sqlalchemy.orm.Session`'s
    transaction; ``connection`` is that transaction's connection. A read-only
    one has a plain :class:`~sqlalchemy.engine.Connection` and no transaction:
    each statement is its own (see :func:`transaction`); its ``session`` is made
    on first use, over the same connection, for the repositories that read
    through the ORM, and refuses to flush. Repositories are built on first use (and their modules
    imported then), so a unit of work that reads runs does not pay for the
    agents' code.
    """

    def __init__(self, session: Session | None = None, *, connection: Connection | None = None):
        if (session is None) == (connection is None):
            raise TypeError("a unit of work has a session or, read only, a connection")
        self._session = session
        self._connection = connection

    @property
    def readonly(self) -> bool:
        """Whether writes are refused (a read-only unit of work)."""
        return self._connection is not None

    @property
    def connection(self) -> Connection:
        """The connection every statement of this unit of work runs on."""
        if self._connection is not None:
            return self._connection
        assert self._session is not None
        return self._session.connection()

    @property
    def session(self) -> Session:
        """The ORM session: the unit's transaction, or (read only) one over its
        connection, made for the first repository that reads through the ORM."""
        if self._session is None:
            self._session = _ReadOnlySession(bind=self._connection)
        return self._session

    @cached_property
    def results(self) -> ResultsRepository:
        from karr_db.repositories.results import ResultsRepository

        if self._connection is not None:
            return ResultsRepository(self._connection)  # reads only: no events repository
        return ResultsRepository(self.session, events=self.events)

    @cached_property
    def agents(self) -> AgentsRepository:
        from karr_db.repositories.agents import AgentsRepository

        return AgentsRepository(self.session, events=self.events)

    @cached_property
    def campaigns(self) -> CampaignsRepository:
        from karr_db.repositories.campaigns import CampaignsRepository

        return CampaignsRepository(self.session, events=self.events)

    @cached_property
    def quick_tests(self) -> QuickTestsRepository:
        from karr_db.repositories.quick_tests import QuickTestsRepository

        return QuickTestsRepository(self.session, events=self.events)

    @cached_property
    def events(self) -> EventsRepository:
        from karr_db.repositories.events import EventsRepository

        return EventsRepository(self.session)

    @cached_property
    def web_settings(self) -> WebSettingsRepository:
        from karr_db.repositories.settings import WebSettingsRepository

        return WebSettingsRepository(self.session, events=self.events)

    @cached_property
    def agent_settings(self) -> AgentSettingsRepository:
        from karr_db.repositories.settings import AgentSettingsRepository

        return AgentSettingsRepository(self.session, events=self.events)

    @cached_property
    def agent_engines(self) -> AgentEnginesRepository:
        from karr_db.repositories.agent_engines import AgentEnginesRepository

        return AgentEnginesRepository(self.session, events=self.events)

    @cached_property
    def engine_profiles(self) -> EngineProfilesRepository:
        from karr_db.repositories.engine_profiles import EngineProfilesRepository

        return EngineProfilesRepository(self.session, events=self.events)

    @cached_property
    def quick_test_logs(self) -> QuickTestLogsRepository:
        from karr_db.repositories.logs import QuickTestLogsRepository

        return QuickTestLogsRepository(self.session, events=self.events)

    @cached_property
    def campaign_logs(self) -> CampaignLogsRepository:
        from karr_db.repositories.logs import CampaignLogsRepository

        return CampaignLogsRepository(self.session, events=self.events)

    def __repr__(self) -> str:
        kind = "read only" if self.readonly else "writing"
        return f"UnitOfWork({kind}, {self.connection.engine!r})"


class _ReadOnlySession(Session):
    """A read-only unit of work's session: reads through the ORM; a flush of any
    change is refused with the layer's error before any SQL (on PostgreSQL the
    connection is in autocommit, where the server would not refuse it)."""

    def flush(self, objects: Any = None) -> None:
        if self.new or self.dirty or self.deleted:
            raise StorageError("writing", "a read-only unit of work cannot write")
        super().flush(objects)


@contextmanager
def transaction(
    engine: Engine,
    *,
    immediate: bool = False,
    readonly: bool = False,
    operation: str = "a transaction",
) -> Iterator[UnitOfWork]:
    """One unit of work: one transaction committed on success, rolled back on error;
    or, ``readonly``, a plain connection that refuses writes.

    ``immediate`` takes SQLite's write lock at BEGIN (a no-op on PostgreSQL).

    A read-only unit of work has no ORM session of its own and opens no
    transaction: each statement runs on its own, so a read of one statement
    costs one round trip on PostgreSQL (autocommit) and no BEGIN or COMMIT on
    SQLite. Each such statement reads its own snapshot (READ COMMITTED-like):
    two reads in one read-only unit of work may see a write committed between
    them. A repository read of several statements, or a streamed one, runs
    them in one explicit read-only transaction
    (:func:`karr_db.dialects.snapshot`), so every answer is consistent in
    itself. Writes are refused with :class:`~karr_db.errors.StorageError`:
    a repository write before any SQL (it takes the event log's lock first,
    which refuses), an ORM flush likewise, and on SQLite any other write by the
    ``query_only`` pragma. On PostgreSQL, SQL the caller sends itself on
    ``uow.connection`` is not checked (autocommit: the server does not refuse
    it; a hot standby does).

    Driver errors leave through :func:`translated`; :func:`run_transaction`
    re-runs a whole transaction on the retryable ones.
    """
    if readonly:
        if immediate:
            raise ValueError("a read-only unit of work takes no write lock")
        options = {READ_ONLY_OPTION: True, **for_connection(engine).read_only_options}
        with translated(operation), engine.connect() as connection:
            connection.execution_options(**options)
            uow = UnitOfWork(connection=connection)
            try:
                yield uow
            finally:
                if uow._session is not None:  # made: close it, not the connection under it
                    uow._session.close()
        return
    # The outer translation sees only what COMMIT raises (the inner one has
    # translated everything before): then the outcome may be unknown.
    with (
        Session(engine, expire_on_commit=False) as session,
        translated(operation, during_commit=True),
        session.begin(),
        translated(operation),
    ):
        if immediate:
            # The first connection a session procures gets this option before
            # its BEGIN is emitted.
            session.connection(execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        yield UnitOfWork(session)


def run_transaction(
    engine: Engine,
    work: Callable[[UnitOfWork], T],
    *,
    immediate: bool = False,
    idempotent: bool = False,
    attempts: int = DEFAULT_ATTEMPTS,
    deadline: float = DEFAULT_DEADLINE,
    operation: str = "a transaction",
    on_retry: Callable[[int, TransientStorageError], None] | None = None,
) -> T:
    """``work(uow)`` in its own :func:`transaction`, committed; re-run on transient failures.

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
            with transaction(engine, immediate=immediate, operation=operation) as uow:
                return work(uow)
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
