"""Losing the PostgreSQL connection mid-transaction: a clear retryable error, nothing
partial, and the same process carries on once the server answers again."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from karr_db import migrations
from karr_db.engine import make_engine
from karr_db.errors import ConnectionLostError, StorageError
from karr_db.uow import UnitOfWork, run_transaction, transaction
from tests.reliability.reliability_helpers import check_store, load_samples, variant
from tests.support.servers import Cluster, cluster_tool_missing, create_database, free_port

pytestmark = [pytest.mark.reliability, pytest.mark.postgres_only]


@pytest.fixture
def throwaway_cluster() -> Iterator[tuple[tuple[str, str], str]]:
    """A PostgreSQL cluster of the test's own on a free port, dropped afterwards, so that
    restarting it disturbs nobody: never the cluster ``KARR_TEST_POSTGRES_URL`` names.
    Yields ((version, name), URL of a migrated database in it)."""
    missing = cluster_tool_missing()
    if missing is not None:
        pytest.skip(missing)
    cluster = Cluster(f"karr_restart_{uuid.uuid4().hex[:8]}", free_port())
    try:
        cluster.create()
        cluster.start()
        create_database(cluster.url(), "karr_restart")
        url = cluster.url("karr_restart")
        migrations.upgrade(url)
        yield (cluster.version, cluster.name), url
    finally:
        cluster.drop()


def _server_ready(url: str) -> bool:
    parsed = make_url(url)
    ready = subprocess.run(
        ["pg_isready", "-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return ready.returncode == 0


def _wait_for_sleeper(engine: Engine, database: str) -> int:
    """The backend pid of the transaction parked in pg_sleep (waits at most 30 s)."""
    deadline = time.monotonic() + 30
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            pid = connection.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = :d "
                    "AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()"
                ),
                {"d": database},
            ).scalar()
            if pid is not None:
                return int(pid)
            connection.rollback()
            time.sleep(0.02)
    raise AssertionError("the in-flight transaction never reached pg_sleep")


def _save_then_park(document: dict[str, Any], parked: list[int]) -> Any:
    """Work that saves a run and, on its first run only, waits in the server."""

    def work(uow: UnitOfWork) -> Any:
        saved = uow.results.save(document)
        if not parked:
            parked.append(1)
            uow.session.execute(sa.select(sa.func.pg_sleep(60)))
        return saved

    return work


def _in_thread(target: Any) -> tuple[threading.Thread, list[BaseException], list[Any]]:
    errors: list[BaseException] = []
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(target())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors, results


def test_server_restart_fails_the_transaction_in_flight_and_the_process_carries_on(
    throwaway_cluster: tuple[tuple[str, str], str], samples_dir: Path, figures: Any
) -> None:
    """Restarts a cluster of its own (see ``throwaway_cluster``), never the server
    under test; skipped where no throwaway cluster can be made."""
    cluster, url = throwaway_cluster
    database = make_url(url).database or ""
    document = variant(load_samples(samples_dir), "restart")
    engine = make_engine(url, pool_size=3)
    watcher = make_engine(url, poolclass=sa.pool.NullPool)
    restarted = 0.0
    try:
        # Fill the pool: three connections that the restart will kill while idle.
        held = [engine.connect() for _ in range(3)]
        for connection in held:
            connection.execute(sa.text("SELECT 1"))
            connection.close()

        parked: list[int] = []

        def in_flight() -> Any:
            with transaction(engine, operation="saving a run") as uow:
                return _save_then_park(document, parked)(uow)

        thread, errors, _ = _in_thread(in_flight)
        _wait_for_sleeper(watcher, database)
        started = time.monotonic()
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "restart"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        restarted = time.monotonic() - started
        thread.join(90)
        assert not thread.is_alive()

        assert len(errors) == 1
        error = errors[0]
        assert isinstance(error, ConnectionLostError), repr(error)
        assert isinstance(error, StorageError)
        assert error.retryable
        assert not error.during_commit  # it never committed: safe to run again
        assert "saving a run" in str(error)

        # Same engine, same process: every pooled connection is dead, pre-ping replaces them.
        with transaction(engine) as uow:
            assert uow.results.find_summary(_run_id(document)) is None, (
                "the interrupted save left a run behind"
            )
        for _ in range(3):
            with transaction(engine) as uow:
                saved = uow.results.save(document)
        assert not saved.created
        check = check_store(engine)
        assert check.runs == 1
    finally:
        engine.dispose()
        watcher.dispose()
        _ensure_running(url, cluster)
    figures["restart_seconds"] = round(restarted, 1)
    figures["pooled_connections_killed"] = 3
    figures["rows_checked"] = check.rows


def _ensure_running(url: str, cluster: tuple[str, str]) -> None:
    """Every other test needs the server: start it if it does not answer, and wait."""
    deadline = time.monotonic() + 60
    while not _server_ready(url) and time.monotonic() < deadline:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "start"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        time.sleep(0.5)


def _run_id(document: dict[str, Any]) -> str:
    from karr_db.documents import run_id_for

    return run_id_for(document)


def test_killed_backend_is_retried_as_a_whole_transaction(
    migrated_postgres_url: str, samples_dir: Path, figures: Any
) -> None:
    """The cheap variant, repeatable anywhere: the server kills this session's backend
    mid-transaction; run_transaction re-runs the whole function once and it commits once."""
    url = migrated_postgres_url
    database = make_url(url).database or ""
    samples = load_samples(samples_dir)
    engine = make_engine(url, pool_size=2)
    admin = make_engine(url, poolclass=sa.pool.NullPool)
    trials = 3
    try:
        for trial in range(trials):
            document = variant(samples, f"terminated-{trial}")
            parked: list[int] = []
            retries: list[BaseException] = []
            thread, errors, results = _in_thread(
                lambda d=document, p=parked, r=retries: run_transaction(
                    engine,
                    _save_then_park(d, p),
                    on_retry=lambda _n, e: r.append(e),
                )
            )
            pid = _wait_for_sleeper(admin, database)
            with admin.connect() as connection:
                connection.execute(sa.select(sa.func.pg_terminate_backend(pid)))
                connection.commit()
            thread.join(90)
            assert errors == []
            assert len(retries) == 1
            assert isinstance(retries[0], ConnectionLostError)
            assert results[0].created  # the first attempt left nothing behind
        check = check_store(engine)
        assert check.runs == trials
    finally:
        engine.dispose()
        admin.dispose()
    figures["trials"] = trials
    figures["backends_killed"] = trials
    figures["rows_checked"] = check.rows
