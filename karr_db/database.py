"""A small facade for scripts and the command line: a database and units of work.

Applications that manage their own sessions use the repositories directly;
this is the short path for everyone else::

    with Database("sqlite:///karr.db") as db, db.unit_of_work() as uow:
        uow.results.save(document)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Engine
from sqlalchemy.engine import URL

from karr_db import migrations
from karr_db.dialects import for_connection
from karr_db.engine import default_replica_url, make_engine, sqlite_path, translated
from karr_db.errors import DatabaseURLError, MissingDatabaseError
from karr_db.uow import UnitOfWork, transaction

__all__ = ["Closing", "Database", "UnitOfWork"]


class Closing(ABC):
    """``with`` support for objects that hold connections: ``__exit__`` calls
    :meth:`close`. Shared by :class:`Database` and KITT's result store, so both
    release their engine the same way."""

    @abstractmethod
    def close(self) -> None:
        """Release what the object holds."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Database(Closing):
    """An engine plus the operations a script needs; owns the engine it creates.

    The first :meth:`unit_of_work` refuses a database this release cannot use
    as it stands (empty, the earlier system's not yet adopted, behind, or
    newer) with the layer's error naming the next step, instead of failing
    later on a missing table or misreading a newer schema. Tools that migrate
    pass ``require_current=False``; :meth:`upgrade`, :meth:`status` and
    :meth:`check` never require it. ``read_only`` opens a SQLite file
    read-only and refuses one that does not exist.

    ``replica_url`` names a PostgreSQL hot standby of the primary: read-only
    units of work go there (see :meth:`unit_of_work`), everything else to the
    primary. Without ``url`` and ``engine``, both come from the environment
    (``KARR_DATABASE_URL``, ``KARR_REPLICA_URL``). ``pooler`` is
    :func:`~karr_db.engine.make_engine`'s, for both.
    """

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        engine: Engine | None = None,
        replica_url: str | URL | None = None,
        require_current: bool = True,
        read_only: bool = False,
        pooler: bool | None = None,
        **kwargs: Any,
    ):
        self._owns_engine = engine is None
        self.engine = (
            engine
            if engine is not None
            else make_engine(url, read_only=read_only, pooler=pooler, **kwargs)
        )
        has_replicas = for_connection(self.engine).has_replicas
        if replica_url is None and url is None and engine is None and has_replicas:
            replica_url = default_replica_url()  # both from the environment, or neither
        #: The hot standby read-only units of work go to (``None``: the primary).
        self.replica: Engine | None = None
        if replica_url is not None:
            try:
                if not has_replicas:
                    raise DatabaseURLError("a replica needs a postgresql:// primary")
                self.replica = make_engine(replica_url, pooler=pooler, **kwargs)
                if not for_connection(self.replica).has_replicas:
                    raise DatabaseURLError("the replica URL must be a postgresql:// URL")
            except BaseException:
                self.close()  # nobody gets this object to close
                raise
        self._require_current = require_current
        self._checked = not require_current

    @property
    def url(self) -> str:
        """The database URL with any password masked."""
        return self.engine.url.render_as_string(hide_password=True)

    def require_current(self) -> None:
        """Raise unless the database (and the replica) is at this release's head;
        checked once per ``Database`` (the version tables only, no row counts)."""
        if not self._checked:
            path = sqlite_path(self.engine.url)
            if path is not None and not path.exists():
                # Connecting would create an empty file, which helps nobody.
                raise MissingDatabaseError(str(path.absolute()))
            with translated("checking the database's version"):
                migrations.require_current(self.engine)
                if self.replica is not None:
                    migrations.require_current(self.replica)
            self._checked = True

    def engine_for(self, *, readonly: bool, fresh: bool = False) -> Engine:
        """The engine a unit of work goes to: the replica for a read-only one that
        accepts the replica's lag (``fresh=False``), else the primary."""
        if readonly and not fresh and self.replica is not None:
            return self.replica
        return self.engine

    def upgrade(self, *, legacy_timezone: str | None = None) -> migrations.UpgradeReport:
        """See :func:`karr_db.migrations.upgrade` (``legacy_timezone`` included)."""
        report = migrations.upgrade(self.engine, legacy_timezone=legacy_timezone)
        self._checked = not self._require_current  # look again before the next unit of work
        return report

    def repair_timestamps(
        self, *, legacy_timezone: str | None = None
    ) -> migrations.TimestampRepair:
        """See :func:`karr_db.migrations.repair_timestamps`."""
        return migrations.repair_timestamps(self.engine, legacy_timezone=legacy_timezone)

    def status(self, *, row_counts: bool = True) -> migrations.DatabaseStatus:
        """See :func:`karr_db.migrations.status` (``row_counts=False`` counts nothing)."""
        return migrations.status(self.engine, row_counts=row_counts)

    def check(self) -> list[migrations.Finding]:
        return migrations.check(self.engine)

    @contextmanager
    def unit_of_work(
        self, *, readonly: bool = False, immediate: bool | None = None, fresh: bool = False
    ) -> Iterator[UnitOfWork]:
        """Commit on success, roll back on any error.

        A unit of work may read and then write, so on SQLite it takes the
        write lock at BEGIN (``immediate``, the default unless ``readonly``):
        a DEFERRED transaction that read before another writer committed
        could never upgrade its lock, whatever the busy timeout.
        ``immediate=False`` gives a DEFERRED writer (with the retry it needs,
        see :func:`karr_db.uow.run_transaction`); a no-op on PostgreSQL.

        Readers pass ``readonly=True``: a plain connection, no ORM session of
        its own and no transaction, so a one-statement read costs one round
        trip on PostgreSQL and no BEGIN or COMMIT on SQLite; no write lock, and
        any repository write is refused with :class:`~karr_db.errors.StorageError`
        on both dialects. Each read sees its own snapshot (a read of several
        statements reads one); two reads may see a write committed between them
        (see :func:`karr_db.uow.transaction`).

        With a replica, a read-only unit of work runs there and sees the
        primary as it was up to the replica's replay lag; ``fresh=True`` reads
        from the primary instead (to read one's own writes).
        """
        if immediate is None:
            immediate = not readonly
        if immediate and readonly:
            raise ValueError("a read-only unit of work takes no write lock: drop immediate=True")
        self.require_current()
        engine = self.engine_for(readonly=readonly, fresh=fresh)
        with transaction(engine, immediate=immediate, readonly=readonly) as uow:
            yield uow

    def wait_for_events(self, after_id: int, *, timeout: float, fresh: bool = False) -> bool:
        """:func:`~karr_db.repositories.events.wait_for_events` where read-only units
        of work go (the replica unless ``fresh``): whether an event after
        ``after_id`` is there within ``timeout`` seconds."""
        from karr_db.repositories.events import wait_for_events

        self.require_current()
        with translated("waiting for events"):
            return wait_for_events(
                self.engine_for(readonly=True, fresh=fresh), after_id, timeout=timeout
            )

    def close(self) -> None:
        """Dispose of the engines this object made (what ``with`` calls)."""
        if self._owns_engine:
            self.engine.dispose()
        if self.replica is not None:
            self.replica.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url!r})"
