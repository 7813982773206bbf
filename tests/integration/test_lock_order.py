"""One lock order for every repository transaction: no deadlock, no lock-upgrade failure.

PostgreSQL: transaction A writes object Y, then object X while B, started in
between, writes X alone. If any writing operation touched rows before taking
the event-log lock, B would hold X's rows while waiting for the log lock that
A holds, A would wait for X's rows, and the server would kill one of them
with "deadlock detected". Every operation takes the log lock first, so B waits
for A without holding anything and both finish.

SQLite: ``Database.unit_of_work()``, the README's first example, may read and
then write; its transaction takes the write lock at BEGIN, so a writer that
committed in between can never make the upgrade fail.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from karr_db.database import Database, UnitOfWork
from karr_db.errors import ConcurrencyError, NotFoundError, StorageError
from karr_db.repositories.campaigns import RunOutcome

Operation = Callable[[UnitOfWork, dict[str, Any]], object]


def _document(samples_dir: Path, key: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((samples_dir / "sample_accuracy.json").read_text())
    document["model"] = f"lock-order-{key}"
    return document


# Operations on Y (A's first write: A then holds the log lock) ...
FIRST: dict[str, Operation] = {
    "save Y": lambda uow, o: uow.results.save(o["doc_y"]),
    "register agent": lambda uow, o: uow.agents.register("second"),
    "delete Y": lambda uow, o: uow.results.delete(o["run_y"]),
}
# ... and on X, which both A (second) and B (alone) write.
SHARED: dict[str, Operation] = {
    "save X": lambda uow, o: uow.results.save(o["doc_x"]),
    "save_many X": lambda uow, o: uow.results.save_many([o["doc_x"], o["doc_x"]]),
    "delete X": lambda uow, o: uow.results.delete(o["run_x"]),
    "heartbeat": lambda uow, o: uow.agents.heartbeat(o["agent"], status="busy"),
    "record_run": lambda uow, o: uow.campaigns.record_run(o["campaign"], RunOutcome.SUCCEEDED),
    "claim": lambda uow, o: uow.quick_tests.claim_next(o["agent"]),
}
PAIRS = [(first, shared) for first in ("save Y", "register agent") for shared in SHARED] + [
    ("delete Y", "save X"),
    ("delete Y", "delete X"),
]


def _setup(db: Database, samples_dir: Path) -> dict[str, Any]:
    with db.unit_of_work() as uow:
        agent = uow.agents.register("first").agent.id
        campaign = uow.campaigns.create("c", total_runs=10).id
        uow.campaigns.start(campaign)
        for i in range(2):
            uow.quick_tests.dispatch(
                agent, model_path="m", engine_name="vllm", benchmark_name=f"b{i}"
            )
        run_x = uow.results.save(_document(samples_dir, "stored-x")).run.id
        run_y = uow.results.save(_document(samples_dir, "stored-y")).run.id
    return {
        "doc_x": _document(samples_dir, "x"),
        "doc_y": _document(samples_dir, "y"),
        "run_x": run_x,
        "run_y": run_y,
        "agent": agent,
        "campaign": campaign,
    }


def _wait_until_waiting_on_a_lock(db: Database, pid: int) -> None:
    deadline = time.monotonic() + 30
    with db.engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.scalar(
                sa.text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :p"),
                {"p": pid},
            )
            connection.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("transaction B never waited for a lock")


@pytest.mark.postgres_only
@pytest.mark.parametrize(("first", "shared"), PAIRS, ids=[f"{a} + {b}" for a, b in PAIRS])
def test_crossed_orders_do_not_deadlock(
    migrated_postgres_url: str, samples_dir: Path, first: str, shared: str
) -> None:
    with Database(migrated_postgres_url) as db:
        objects = _setup(db, samples_dir)
        a_holds_y = threading.Event()
        b_pid: list[int] = []
        outcomes: dict[str, BaseException | None] = {}

        def transaction_b() -> None:
            try:
                assert a_holds_y.wait(30)
                with db.unit_of_work() as uow:
                    b_pid.append(
                        uow.session.execute(sa.select(sa.func.pg_backend_pid())).scalar_one()
                    )
                    SHARED[shared](uow, objects)
                outcomes["B"] = None
            except BaseException as exc:
                outcomes["B"] = exc

        thread = threading.Thread(target=transaction_b)
        thread.start()
        try:
            with db.unit_of_work() as uow:
                FIRST[first](uow, objects)
                a_holds_y.set()
                while not b_pid and thread.is_alive():
                    time.sleep(0.01)
                if b_pid:
                    _wait_until_waiting_on_a_lock(db, b_pid[0])
                SHARED[shared](uow, objects)
            outcomes["A"] = None
        except BaseException as exc:
            outcomes["A"] = exc
        finally:
            a_holds_y.set()
            thread.join(60)
    assert not isinstance(outcomes["A"], ConcurrencyError), outcomes["A"]
    assert not isinstance(outcomes["B"], ConcurrencyError), outcomes["B"]
    assert outcomes["A"] is None, repr(outcomes["A"])
    # B ran after A: a second delete finds nothing; everything else succeeds.
    if shared == "delete X":
        assert isinstance(outcomes["B"], NotFoundError), repr(outcomes["B"])
    else:
        assert outcomes["B"] is None, repr(outcomes["B"])


def test_a_unit_of_work_that_reads_then_writes_is_not_refused(
    migrated_url: str, samples_dir: Path
) -> None:
    """A DEFERRED transaction that read before another writer committed could not
    upgrade to a write lock on SQLite ("database is locked" at once, whatever the
    busy timeout); the default unit of work begins IMMEDIATE, so the other writer
    waits for it instead."""
    with Database(migrated_url) as db:
        other_done = threading.Event()
        errors: list[BaseException] = []

        def other_writer() -> None:
            try:
                with db.unit_of_work() as uow:
                    uow.results.save(_document(samples_dir, "other"))
            except BaseException as exc:
                errors.append(exc)
            other_done.set()

        with db.unit_of_work() as uow:
            before = uow.results.count()
            thread = threading.Thread(target=other_writer)
            thread.start()
            # Without the write lock the other writer commits at once; with it, it waits.
            other_done.wait(1.0)
            saved = uow.results.save(_document(samples_dir, "mine"))
        thread.join(60)
        assert errors == []
        assert saved.created
        with db.unit_of_work(readonly=True) as uow:
            assert uow.results.count() == before + 2


def test_a_read_only_unit_of_work_refuses_writes(migrated_url: str, samples_dir: Path) -> None:
    """Readers open ``unit_of_work(readonly=True)``: no write lock, and a write in it is
    refused the same way on both dialects instead of failing only under contention."""
    with Database(migrated_url) as db:
        with pytest.raises(StorageError), db.unit_of_work(readonly=True) as uow:
            uow.results.save(_document(samples_dir, "refused"))
        with db.unit_of_work(readonly=True) as uow:
            assert uow.results.count() == 0
        with db.unit_of_work() as uow:  # the connection is writable again
            assert uow.results.save(_document(samples_dir, "accepted")).created


def test_a_writer_holds_the_log_lock_until_it_ends_however_often_it_took_it(
    migrated_url: str,
) -> None:
    """Writers serialise on the log lock whether a transaction took it once, again, or
    again inside a savepoint it rolled back: a second writer waits for the first one's
    commit, and the log holds their events in commit order."""
    with Database(migrated_url) as db:
        a_locked = threading.Event()
        order: list[str] = []
        errors: list[BaseException] = []

        def writer_b() -> None:
            try:
                assert a_locked.wait(30)
                with db.unit_of_work(immediate=False) as unit:
                    unit.events.append("agent.updated", source_id="b")
                order.append("b committed")
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=writer_b)
        thread.start()
        with db.unit_of_work(immediate=False) as unit:
            unit.events.lock_log()
            unit.events.lock_log()
            savepoint = unit.session.begin_nested()
            unit.events.lock_log()
            savepoint.rollback()
            a_locked.set()
            thread.join(0.5)  # time enough for B to commit, were the lock not held
            unit.events.append("agent.updated", source_id="a")
            order.append("a committing")
        thread.join(60)
        assert errors == []
        assert order == ["a committing", "b committed"]
        with db.unit_of_work(readonly=True) as unit:
            assert [e.source_id for e in unit.events.list().items] == ["a", "b"]
