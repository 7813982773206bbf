"""A small facade for scripts and the command line: a database and units of work.

Applications that manage their own sessions use the repositories directly;
this is the short path for everyone else::

    with Database("sqlite:///karr.db") as db, db.unit_of_work() as uow:
        uow.results.save(document)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from karr_db import migrations
from karr_db.db import make_engine, transaction

if TYPE_CHECKING:
    from karr_db.repositories.agents import AgentsRepository
    from karr_db.repositories.campaigns import CampaignsRepository
    from karr_db.repositories.events import EventsRepository
    from karr_db.repositories.quick_tests import QuickTestsRepository
    from karr_db.repositories.results import ResultsRepository


class UnitOfWork:
    """One transaction and the repositories that work inside it."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @cached_property
    def results(self) -> ResultsRepository:
        from karr_db.repositories.results import ResultsRepository

        return ResultsRepository(self.session)

    @cached_property
    def agents(self) -> AgentsRepository:
        from karr_db.repositories.agents import AgentsRepository

        return AgentsRepository(self.session)

    @cached_property
    def campaigns(self) -> CampaignsRepository:
        from karr_db.repositories.campaigns import CampaignsRepository

        return CampaignsRepository(self.session)

    @cached_property
    def quick_tests(self) -> QuickTestsRepository:
        from karr_db.repositories.quick_tests import QuickTestsRepository

        return QuickTestsRepository(self.session)

    @cached_property
    def events(self) -> EventsRepository:
        from karr_db.repositories.events import EventsRepository

        return EventsRepository(self.session)


class Database:
    """An engine plus the operations a script needs; owns the engine it creates."""

    def __init__(
        self, url: str | URL | None = None, *, engine: Engine | None = None, **kwargs: Any
    ):
        self._owns_engine = engine is None
        self.engine = engine if engine is not None else make_engine(url, **kwargs)

    @property
    def url(self) -> str:
        """The database URL with any password masked."""
        return self.engine.url.render_as_string(hide_password=True)

    def upgrade(self, *, legacy_timezone: str | None = None) -> migrations.UpgradeReport:
        """See :func:`karr_db.migrations.upgrade` (``legacy_timezone`` included)."""
        return migrations.upgrade(self.engine, legacy_timezone=legacy_timezone)

    def repair_timestamps(
        self, *, legacy_timezone: str | None = None
    ) -> migrations.TimestampRepair:
        """See :func:`karr_db.migrations.repair_timestamps`."""
        return migrations.repair_timestamps(self.engine, legacy_timezone=legacy_timezone)

    def status(self) -> migrations.DatabaseStatus:
        return migrations.status(self.engine)

    def check(self) -> list[migrations.Finding]:
        return migrations.check(self.engine)

    @contextmanager
    def unit_of_work(self, *, immediate: bool = False) -> Iterator[UnitOfWork]:
        """Commit on success, roll back on any error; ``immediate`` for SQLite writers."""
        with transaction(self.engine, immediate=immediate) as session:
            yield UnitOfWork(session)

    def dispose(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url!r})"
