"""Concurrent writers: nothing lost, nothing doubled, no lock or deadlock error reaches callers."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from karr_db.errors import ConcurrencyError
from karr_db.models import Event
from karr_db.uow import run_transaction, transaction
from tests.reliability.reliability_helpers import (
    WORKER_TIMEOUT,
    budget,
    check_store,
    postgres_worker,
    sqlite_reader,
    sqlite_writer,
)
from tests.support.workers import engine_for

pytestmark = pytest.mark.reliability


def test_retry_reruns_a_sqlite_transaction_that_lost_its_snapshot(
    sqlite_databases: Any,
) -> None:
    """A DEFERRED transaction reads, another writer commits, the first writes: SQLite
    refuses at once ("database is locked", whatever the busy timeout). The layer says
    ConcurrencyError, and run_transaction re-runs the whole function, which then wins."""
    url = sqlite_databases.migrated()
    read_done, other_committed = threading.Event(), threading.Event()
    attempts: list[int] = []

    def work(session: Session) -> int:
        attempts.append(1)
        before = session.scalar(sa.select(sa.func.count()).select_from(Event)) or 0
        if len(attempts) == 1:
            read_done.set()
            assert other_committed.wait(30)
        session.execute(sa.insert(Event).values(event_type="test.mine", data={"seen": before}))
        return int(before)

    def other() -> None:
        assert read_done.wait(30)
        with transaction(engine) as uow:
            uow.session.execute(sa.insert(Event).values(event_type="test.other"))
        other_committed.set()

    with engine_for(url) as engine:
        thread = threading.Thread(target=other)
        thread.start()
        with pytest.raises(ConcurrencyError, match="locked"), transaction(engine) as uow:
            work(uow.session)
        thread.join(30)
        attempts.clear()
        read_done.clear()
        other_committed.clear()
        thread = threading.Thread(target=other)
        thread.start()
        seen = run_transaction(engine, lambda uow: work(uow.session))
        thread.join(30)
        assert len(attempts) == 2
        assert seen == 2  # the second run saw the other writer's rows (one per round)
        with transaction(engine) as uow:
            types = Counter(uow.session.scalars(sa.select(Event.event_type)))
        assert types == {"test.other": 2, "test.mine": 1}


@pytest.mark.postgres_only
def test_retry_reruns_the_victim_of_a_postgres_deadlock(migrated_postgres_url: str) -> None:
    """Two transactions lock two rows in opposite orders: PostgreSQL kills one with a
    deadlock; run_transaction re-runs it and both units of work take effect exactly once."""
    with engine_for(migrated_postgres_url) as engine:
        with transaction(engine) as uow:
            campaigns = uow.campaigns
            ids = [campaigns.create(f"c{i}", total_runs=10).id for i in range(2)]
        barrier = threading.Barrier(2, timeout=30)
        attempts: Counter[str] = Counter()
        retried: list[str] = []
        errors: list[BaseException] = []

        def work(session: Session, first: str, second: str, name: str) -> None:
            attempts[name] += 1
            bump = sa.text(
                "UPDATE web_campaigns SET description = description || :n WHERE id = :id"
            )
            session.execute(bump, {"n": name, "id": first})
            if attempts[name] == 1:
                barrier.wait()  # both hold their first row now
            session.execute(bump, {"n": name, "id": second})

        def runner(first: str, second: str, name: str) -> None:
            try:
                run_transaction(
                    engine,
                    lambda uow: work(uow.session, first, second, name),
                    on_retry=lambda _n, _e: retried.append(name),
                )
            except BaseException as exc:
                errors.append(exc)

        with transaction(engine) as uow:
            uow.session.execute(sa.text("UPDATE web_campaigns SET description = ''"))
        threads = [
            threading.Thread(target=runner, args=(ids[0], ids[1], "a")),
            threading.Thread(target=runner, args=(ids[1], ids[0], "b")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert len(retried) == 1, "exactly one deadlock victim, retried once"
        with transaction(engine) as uow:
            descriptions: Sequence[Any] = uow.session.scalars(
                sa.select(sa.column("description"))
                .select_from(sa.table("web_campaigns"))
                .order_by(sa.column("id"))
            ).all()
        assert sorted(descriptions) == ["ab", "ab"] or sorted(descriptions) == ["ba", "ba"]


def test_concurrent_writers_on_one_sqlite_file(
    sqlite_databases: Any, samples_dir: Path, figures: Any
) -> None:
    url = sqlite_databases.migrated()
    writers, readers = 3, 2
    seconds = budget(6.0, 0.15)
    max_ops = 200 if seconds <= 6.0 else 1_000_000
    context = multiprocessing.get_context("spawn")
    with context.Pool(writers + readers) as pool:
        writing = [
            pool.apply_async(sqlite_writer, (url, w, str(samples_dir), seconds, max_ops))
            for w in range(writers)
        ]
        reading = [pool.apply_async(sqlite_reader, (url, seconds, max_ops)) for _ in range(readers)]
        written = [r.get(timeout=WORKER_TIMEOUT) for r in writing]
        read = [r.get(timeout=WORKER_TIMEOUT) for r in reading]

    created = [run_id for report in written for run_id in report["created"]]
    assert len(created) == len(set(created)), "a run was reported created twice"
    with engine_for(url) as engine:
        check = check_store(engine)
        with transaction(engine) as uow:
            appended = uow.session.scalar(
                sa.select(sa.func.count()).where(Event.event_type == "test.appended")
            )
    assert check.runs == len(created)
    assert appended == sum(r["events"] for r in written)
    figures["processes"] = f"{writers} writers + {readers} readers"
    figures["operations"] = sum(r["ops"] for r in written) + sum(r["reads"] for r in read)
    figures["runs"] = check.runs
    figures["events_appended"] = appended
    figures["retries"] = sum(r["retries"] for r in written)
    figures["rows_checked"] = check.rows


@pytest.mark.postgres_only
def test_postgres_under_load(migrated_postgres_url: str, samples_dir: Path, figures: Any) -> None:
    url = migrated_postgres_url
    processes = 4
    ops = int(budget(40, 0.15 / 4 * 10))  # about 0.1 s per operation in CI
    with engine_for(url) as engine:
        with transaction(engine) as uow:
            agent_id = uow.agents.register("loaded").agent.id
            tests = uow.quick_tests
            queued = {
                tests.dispatch(
                    agent_id, model_path="m", engine_name="vllm", benchmark_name=f"b{i}"
                ).id
                for i in range(processes * ops // 4 * 3 // 4)  # fewer tests than claims
            }
            campaigns = uow.campaigns
            campaign_id = campaigns.create("load", total_runs=processes * ops).id
            campaigns.start(campaign_id)

        context = multiprocessing.get_context("spawn")
        with context.Pool(processes) as pool:
            reports = pool.starmap_async(
                postgres_worker,
                [(url, w, str(samples_dir), agent_id, campaign_id, ops) for w in range(processes)],
            ).get(timeout=WORKER_TIMEOUT)

        created = [run_id for r in reports for run_id in r["created"]]
        claimed = [test_id for r in reports for test_id in r["claimed"]]
        recorded: Counter[str] = Counter()
        for r in reports:
            recorded.update(r["recorded"])
        assert len(created) == len(set(created))
        assert len(claimed) == len(set(claimed)), "a quick test was claimed twice"
        assert set(claimed) == queued
        check = check_store(engine)
        assert check.runs == len(created)
        with transaction(engine) as uow:
            campaign = uow.campaigns.get(campaign_id)
            progressed = uow.session.scalar(
                sa.select(sa.func.count()).where(Event.event_type == "campaign.progressed")
            )
        assert (campaign.succeeded, campaign.failed, campaign.skipped) == (
            recorded["succeeded"],
            recorded["failed"],
            recorded["skipped"],
        )
        assert progressed == sum(recorded.values())
    figures["processes"] = processes
    figures["operations"] = sum(r["ops"] for r in reports)
    figures["runs"] = check.runs
    figures["claims"] = len(claimed)
    figures["counter_increments"] = sum(recorded.values())
    figures["retries"] = sum(r["retries"] for r in reports)
    figures["rows_checked"] = check.rows


def test_layer_errors_cross_process_boundaries() -> None:
    """Workers hand errors back to their parent by pickling; a KarrError that cannot be
    rebuilt there would hang a multiprocessing pool instead of failing."""
    import pickle

    from karr_db.errors import ConnectionLostError, FieldError, ValidationError

    lost = pickle.loads(pickle.dumps(ConnectionLostError("saving", "gone", during_commit=True)))
    assert (type(lost), lost.operation, lost.during_commit) == (ConnectionLostError, "saving", True)
    assert str(lost) == "saving failed in the database: gone"
    refused = pickle.loads(pickle.dumps(ValidationError("document", [FieldError("model", "x")])))
    assert refused.fields == ["model"]
