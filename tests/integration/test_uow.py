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
from karr_db.models import WebSetting
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
        repository = getattr(uow, name)
        # Results keep it with the session their writes go through.
        events = repository._writing()[1] if name == "results" else repository._events
        assert events is uow.events


# --- read-only units of work ---------------------------------------------------------


def _save(engine: Engine, **extra: Any) -> str:
    with transaction(engine, immediate=True) as uow:
        return uow.results.save(minimal(**extra)).run.id


def _sent(engine: Engine) -> list[str]:
    sent: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _record(_c: Any, _cur: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    return sent


def test_a_read_only_unit_of_work_refuses_writes_before_any_sql(engine: Engine) -> None:
    """A repository write, of results or of any other repository, and an ORM flush are
    refused with the layer's error before a statement is sent, on both dialects
    (on PostgreSQL the connection is in autocommit, where the server would not)."""
    sent = _sent(engine)
    writes: list[Callable[[UnitOfWork], object]] = [
        lambda uow: uow.results.save(minimal()),
        lambda uow: uow.results.delete("no-such-run"),
        lambda uow: uow.events.append("agent.updated", source_id="a1"),
        lambda uow: uow.agents.register("refused", hostname="refused"),
    ]
    for write in writes:
        with (
            pytest.raises(StorageError, match="read-only"),
            transaction(engine, readonly=True) as uow,
        ):
            write(uow)
        assert not [s for s in sent if "PRAGMA" not in s], sent
    with transaction(engine, readonly=True) as uow:
        uow.session.add(WebSetting(key="k", value="v"))
        with pytest.raises(StorageError, match="read-only"):
            uow.session.flush()
    with transaction(engine, readonly=True) as uow:
        assert uow.readonly
        assert uow.results.count() == 0


def test_each_read_of_a_read_only_unit_of_work_sees_its_own_snapshot(engine: Engine) -> None:
    """Reads of one statement each see what was committed before them (READ
    COMMITTED-like); the statements of one read run in one snapshot, which a write
    committed meanwhile does not change."""
    from karr_db.dialects import snapshot

    first = _save(engine, model="first")
    with transaction(engine, readonly=True) as uow:
        assert uow.results.count() == 1
        _save(engine, model="second")
        assert uow.results.count() == 2  # a new read, a new snapshot
        with snapshot(uow.connection):
            assert uow.results.count() == 2
            _save(engine, model="third")
            assert uow.results.count() == 2  # the same snapshot
            assert uow.results.get(first).model == "first"
        assert uow.results.count() == 3
    with transaction(engine) as uow, snapshot(uow.connection):  # a writing unit's: a no-op
        assert uow.results.count() == 3


def test_a_run_read_in_full_costs_one_statement_where_statements_are_round_trips(
    engine: Engine,
) -> None:
    """PostgreSQL: the run, its benchmarks and metrics are one statement in autocommit
    (one round trip); SQLite: three statements in one read transaction."""
    from karr_db.dialects import for_connection

    run_id = _save(
        engine,
        results=[{"test_name": "t", "metrics": {"a": 1.0, "b": float("nan")}}],
        system_info={"gpu": {"model": "H100", "count": 2}},
    )
    with transaction(engine, immediate=True) as uow:  # the same answer in a writing unit
        expected = uow.results.get(run_id)
    sent = _sent(engine)
    with transaction(engine, readonly=True) as uow:
        got = uow.results.get(run_id)
        assert uow.results.find("no-such-run") is None
    assert got.model_dump_json() == expected.model_dump_json()
    assert got.hardware is not None
    assert got.hardware.gpu_model == "H100"
    reads = [s for s in sent if "PRAGMA" not in s]
    if for_connection(engine).round_trips:
        assert len(reads) == 2  # get, find
    else:
        words = [s.split()[0] for s in reads]
        assert words == [
            "BEGIN",
            "SELECT",
            "SELECT",
            "SELECT",
            "COMMIT",
            "BEGIN",
            "SELECT",
            "COMMIT",
        ]


def test_a_streamed_read_left_unfinished_ends_with_its_unit_of_work(engine: Engine) -> None:
    """A streamed read runs in its own read-only transaction (a server-side cursor
    needs one on PostgreSQL); one abandoned half-way ends with its unit of work, and
    the next unit of work on the same pooled connection streams again."""
    for model in ("a", "b", "c"):
        _save(engine, model=model)
    kept = []
    for _ in range(2):
        with transaction(engine, readonly=True) as uow:
            first = uow.results.iter_documents(batch_size=1)
            next(first)
            first.close()  # type: ignore[attr-defined]  # a generator
            assert uow.results.count() == 3
            second = uow.results.iter_documents(batch_size=1)
            next(second)
            kept.append(second)  # left open past its unit of work
    with transaction(engine, readonly=True) as uow:
        assert len(list(uow.results.iter_documents(batch_size=1))) == 3


def test_two_streamed_reads_interleaved_in_a_read_only_unit_of_work(engine: Engine) -> None:
    """Streamed reads share the unit of work's snapshot: the one that ends first
    does not end the snapshot (and the server-side cursor) the other still reads,
    whichever ends first and whether it ends by exhaustion or by being closed."""
    for model in ("a", "b", "c"):
        _save(engine, model=model)
    with transaction(engine, readonly=True) as uow:
        short = uow.results.iter_documents({"model": "a"}, batch_size=1)
        long = uow.results.iter_documents(batch_size=1)
        pairs = list(zip(short, long, strict=False))
        assert len(pairs) == 1  # short is exhausted, long has read one
        assert len(list(long)) == 2
    with transaction(engine, readonly=True) as uow:
        first = uow.results.iter_documents(batch_size=1)
        second = uow.results.iter_documents(batch_size=1)
        next(first)
        next(second)
        first.close()  # type: ignore[attr-defined]  # a generator
        assert len(list(second)) == 2
        assert uow.results.count() == 3


def test_an_event_append_in_a_read_only_unit_of_work_is_refused_and_not_stored(
    engine: Engine,
) -> None:
    """On both dialects: refused with the layer's error, and no event committed."""
    with pytest.raises(StorageError), transaction(engine, readonly=True) as uow:
        uow.events.append("agent.updated", source_id="a1")
    with pytest.raises(StorageError), transaction(engine, readonly=True) as uow:
        uow.events.append_many([("agent.updated", "a1", None)])
    with transaction(engine, readonly=True) as uow:
        assert uow.events.list().items == []
