"""One unit of work: the three ways to open a transaction yield the same thing and
fail the same way; the old import paths still work for one release."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

import karr_db
from karr_db import errors
from karr_db.database import Database
from karr_db.engine import make_engine
from karr_db.errors import ConcurrencyError, StorageError
from karr_db.repositories.agents import AgentsRepository
from karr_db.repositories.campaigns import CampaignsRepository
from karr_db.repositories.events import EventsRepository
from karr_db.repositories.quick_tests import QuickTestsRepository
from karr_db.repositories.results import ResultsRepository
from karr_db.uow import UnitOfWork, run_transaction, transaction


def minimal(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "engine": "vllm", "timestamp": "2026-01-02T03:04:05", **extra}


#: A unit of work opened by one of the three entry points, handed to ``work``.
Entry = Callable[[Engine, Callable[[UnitOfWork], Any]], Any]


def _by_transaction(engine: Engine, work: Callable[[UnitOfWork], Any]) -> Any:
    with transaction(engine) as uow:
        return work(uow)


def _by_database(engine: Engine, work: Callable[[UnitOfWork], Any]) -> Any:
    # DEFERRED like the other two, so that a lock conflict shows up inside the work.
    with Database(engine=engine) as db, db.unit_of_work(immediate=False) as uow:
        return work(uow)


def _by_run_transaction(engine: Engine, work: Callable[[UnitOfWork], Any]) -> Any:
    return run_transaction(engine, work, attempts=1)  # no retry: the first error shows


ENTRIES: dict[str, Entry] = {
    "transaction": _by_transaction,
    "Database.unit_of_work": _by_database,
    "run_transaction": _by_run_transaction,
}


def _outcome(entry: Entry, engine: Engine, work: Callable[[UnitOfWork], Any]) -> tuple[type, str]:
    with pytest.raises(StorageError) as caught:
        entry(engine, work)
    return type(caught.value), str(caught.value)


def test_every_entry_point_yields_a_unit_of_work_with_its_repositories(engine: Engine) -> None:
    for name, entry in ENTRIES.items():
        seen: list[UnitOfWork] = []

        def work(uow: UnitOfWork, seen: list[UnitOfWork] = seen, model: str = name) -> str:
            seen.append(uow)
            return uow.results.save(minimal(model=model)).run.id

        run_id = entry(engine, work)
        (uow,) = seen
        assert type(uow) is UnitOfWork, name
        assert isinstance(uow.session, Session), name
        assert isinstance(uow.results, ResultsRepository), name
        assert isinstance(uow.agents, AgentsRepository), name
        assert isinstance(uow.campaigns, CampaignsRepository), name
        assert isinstance(uow.quick_tests, QuickTestsRepository), name
        assert isinstance(uow.events, EventsRepository), name
        assert uow.results is uow.results  # one repository per unit of work
        with transaction(engine) as later:  # committed
            assert later.results.get_document(run_id)["model"] == name


def test_a_refused_statement_is_the_same_storage_error_from_every_entry_point(
    engine: Engine,
) -> None:
    def work(uow: UnitOfWork) -> None:
        uow.session.execute(sa.text("SELECT * FROM no_such_table"))

    outcomes = {name: _outcome(entry, engine, work) for name, entry in ENTRIES.items()}
    assert len(set(outcomes.values())) == 1, outcomes
    kind, message = outcomes["transaction"]
    assert kind is StorageError
    assert message.startswith("a transaction failed")
    assert "no_such_table" in message


def _refused_at_commit(uow: UnitOfWork) -> None:
    """A constraint checked only at COMMIT, so the refusal comes from COMMIT itself."""
    run = uow.session.execute
    if uow.session.get_bind().dialect.name == "sqlite":
        run(sa.text("PRAGMA defer_foreign_keys = ON"))
        run(sa.text("CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY)"))
        run(sa.text("CREATE TEMP TABLE child (parent_id INTEGER REFERENCES parent (id))"))
        run(sa.text("INSERT INTO child VALUES (1)"))
    else:
        run(
            sa.text(
                "CREATE TEMP TABLE once (id int, CONSTRAINT once_id UNIQUE (id) "
                "DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        run(sa.text("INSERT INTO once VALUES (1), (1)"))


def test_a_refusal_at_commit_is_the_same_storage_error_from_every_entry_point(
    engine: Engine,
) -> None:
    outcomes = {
        name: _outcome(entry, engine, _refused_at_commit) for name, entry in ENTRIES.items()
    }
    assert len(set(outcomes.values())) == 1, outcomes
    kind, message = outcomes["transaction"]
    assert kind is StorageError
    assert "FOREIGN KEY" in message or "once_id" in message


@contextmanager
def _held_write_lock(engine: Engine) -> Iterator[Callable[[UnitOfWork], None]]:
    """Another connection holds the lock that ``work`` needs, and ``work`` gives up
    waiting for it at once: the database's own conflict error, on each dialect."""
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        assert path is not None
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")

        def work(uow: UnitOfWork) -> None:
            uow.session.execute(sa.text("PRAGMA busy_timeout = 1"))
            uow.session.execute(sa.text("DELETE FROM agents"))

        try:
            yield work
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.connect() as connection, connection.begin():
            connection.execute(sa.text("LOCK TABLE agents IN ACCESS EXCLUSIVE MODE"))
            ready.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    ready.wait(30)

    def pg_work(uow: UnitOfWork) -> None:
        uow.session.execute(sa.text("SET LOCAL lock_timeout = '10ms'"))
        uow.session.execute(sa.text("SELECT count(*) FROM agents"))

    try:
        yield pg_work
    finally:
        release.set()
        thread.join(30)


def test_a_lock_conflict_is_the_same_concurrency_error_from_every_entry_point(
    migrated_url: str,
) -> None:
    # A fresh connection per transaction: the busy timeout set inside stays there.
    engine = make_engine(migrated_url, poolclass=NullPool)
    try:
        with _held_write_lock(engine) as work:
            outcomes = {name: _outcome(entry, engine, work) for name, entry in ENTRIES.items()}
    finally:
        engine.dispose()
    assert len(set(outcomes.values())) == 1, outcomes
    assert outcomes["transaction"][0] is ConcurrencyError


def _unreachable(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}"  # a directory: SQLite cannot open it
    return "postgresql://nobody@127.0.0.1:1/nothing"  # no server listens on port 1


def test_a_database_that_cannot_be_opened_fails_the_same_way_from_every_entry_point(
    backend: str, tmp_path: Path
) -> None:
    """Database.unit_of_work checks the schema first: that check's driver errors are
    translated like the unit of work's own (they used to leave raw)."""
    engine = make_engine(_unreachable(backend, tmp_path), poolclass=NullPool)
    outcomes = {
        name: _outcome(entry, engine, lambda uow: uow.results.count())
        for name, entry in ENTRIES.items()
        if name != "Database.unit_of_work"
    }
    with pytest.raises(StorageError) as caught, Database(engine=engine) as db, db.unit_of_work():
        pass
    engine.dispose()
    assert len(set(outcomes.values())) == 1, outcomes
    kind, _ = outcomes["transaction"]
    assert type(caught.value) is kind
    assert kind is (StorageError if backend == "sqlite" else errors.ConnectionLostError)


def test_the_package_root_exports_the_public_api() -> None:
    assert karr_db.Database is Database
    assert karr_db.UnitOfWork is UnitOfWork
    assert karr_db.transaction is transaction
    assert karr_db.run_transaction is run_transaction
    assert karr_db.SCHEMA_VERSION == 11
    assert isinstance(karr_db.__version__, str)
    for name in karr_db.__all__:
        assert getattr(karr_db, name) is not None, name
    every_error = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.KarrError)
    }
    assert every_error <= set(karr_db.__all__)
    with pytest.raises(AttributeError):
        _ = karr_db.no_such_name


def test_importing_the_package_stays_light() -> None:
    """``import karr_db`` (and its errors) loads neither SQLAlchemy nor Pydantic."""
    probe = (
        "import sys, karr_db; from karr_db import StorageError, SCHEMA_VERSION; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'pydantic'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_database_status_counts_rows_only_when_asked(migrated_url: str) -> None:
    with Database(migrated_url) as db:
        assert db.status(row_counts=False).row_counts == {}
        assert db.status().row_counts["runs"] == 0


REPOSITORIES = (
    "results",
    "agents",
    "campaigns",
    "quick_tests",
    "web_settings",
    "agent_settings",
    "agent_engines",
    "engine_profiles",
    "quick_test_logs",
    "campaign_logs",
)


@pytest.mark.parametrize("name", REPOSITORIES)
def test_every_repository_shares_the_units_events(migrated_url: str, name: str) -> None:
    """One events repository per unit of work: its log lock and appends are the ones
    every repository of that transaction uses (a read-only unit of work's results
    repository has none: it only reads)."""
    with Database(migrated_url) as db, db.unit_of_work() as uow:
        assert getattr(uow, name)._events is uow.events
