"""PostgreSQL behind PgBouncer in transaction mode with its default settings, as teams
deploy it: every command connects, concurrent work through a pool smaller than
the threads fails nowhere, followers wake, and times stay UTC whatever the
session's time zone."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from karr_db import Database, UnitOfWork, run_transaction
from karr_db.engine import behind_pooler, make_engine
from karr_db.errors import DatabaseURLError
from karr_db.repositories.results import SaveResult
from tests.deploy.deploy_helpers import follower_wakes
from tests.reliability.reliability_helpers import load_samples, variant
from tests.support.cli import cli, cli_process
from tests.support.documents import minimal
from tests.support.servers import pgbouncer, through

pytestmark = pytest.mark.postgres_only

THREADS = 6
POOL_SIZE = 2
#: Each thread's saves, each followed by reads: more than psycopg's five executions
#: of one statement after which it would prepare it.
ROUNDS = 12


@pytest.fixture(scope="module")
def pooler_port(postgres_server: str | None) -> Iterator[int]:
    if postgres_server is None:
        pytest.skip("no PostgreSQL server")
    with pgbouncer(postgres_server, pool_size=POOL_SIZE) as port:
        yield port


@pytest.fixture
def pooled_url(migrated_postgres_url: str, pooler_port: int) -> str:
    """A migrated database, reached through the pooler."""
    return through(migrated_postgres_url, pooler_port)


def _server_zone(url: str, zone: str) -> None:
    """Give the database a default TimeZone (what a session starts with)."""
    name = make_url(url).database
    admin = make_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"ALTER DATABASE \"{name}\" SET TimeZone = '{zone}'")
    finally:
        admin.dispose()


def test_commands_and_the_api_work_through_the_pooler(pooled_url: str, samples_dir: Path) -> None:
    assert cli("list", "--database", pooled_url).exit_code == 0
    imported = cli("import", str(samples_dir), "--database", pooled_url)
    assert imported.exit_code == 0, imported.output
    listed = cli("list", "--json", "--database", pooled_url)
    assert listed.exit_code == 0, listed.output
    assert listed.json()["total"] == len(list(samples_dir.glob("*.json")))
    with Database(pooled_url) as db:
        with db.unit_of_work() as uow:
            saved = uow.results.save(minimal())
        with db.unit_of_work(readonly=True) as uow:
            assert uow.results.get(saved.run.id).model == "m"


def test_the_pooler_is_detected_or_configured(pooled_url: str, migrated_postgres_url: str) -> None:
    def seen(url: str, **kwargs: Any) -> bool:
        engine = make_engine(url, **kwargs)
        try:
            with engine.connect() as connection:
                return behind_pooler(connection)
        finally:
            engine.dispose()

    assert seen(pooled_url)
    assert not seen(migrated_postgres_url)
    assert not seen(f"{pooled_url}?karr_pooler=false")
    assert seen(f"{migrated_postgres_url}?karr_pooler=true")
    assert seen(f"{pooled_url}?karr_pooler=false", pooler=True)  # the argument wins
    with pytest.raises(DatabaseURLError, match="karr_pooler"):
        make_engine(f"{pooled_url}?karr_pooler=maybe")


def _save(document: dict[str, Any], uow: UnitOfWork) -> SaveResult:
    return uow.results.save(document)


def test_load_through_a_pool_smaller_than_the_threads(pooled_url: str, samples_dir: Path) -> None:
    samples = load_samples(samples_dir)
    errors: list[BaseException] = []
    saved: list[str] = []
    start = threading.Barrier(THREADS)

    with Database(pooled_url) as db:

        def worker(number: int) -> None:
            start.wait()
            for round_ in range(ROUNDS):
                try:
                    document = variant(samples, f"t{number}-r{round_}")
                    run = run_transaction(db.engine, partial(_save, document), idempotent=True)
                    with db.unit_of_work(readonly=True) as uow:
                        assert uow.results.get(run.run.id).id == run.run.id
                        uow.results.list({"model": document["model"]}, limit=5)
                        uow.results.count()
                    saved.append(run.run.id)
                except BaseException as exc:
                    errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with db.unit_of_work(readonly=True) as uow:
            assert uow.results.count() == THREADS * ROUNDS == len(set(saved))


def test_a_follower_wakes_through_the_pooler(pooled_url: str) -> None:
    with Database(pooled_url) as db:
        assert follower_wakes(db), "the follower did not wake on a committed event"


@pytest.mark.parametrize("path", ["direct", "pooled"])
def test_times_are_utc_whatever_the_session_zone(
    path: str, migrated_postgres_url: str, pooled_url: str
) -> None:
    _server_zone(migrated_postgres_url, "Asia/Kathmandu")  # UTC+05:45
    url = pooled_url if path == "pooled" else migrated_postgres_url
    with Database(url) as db:
        with db.unit_of_work() as uow:
            assert uow.session.execute(sa.text("SHOW TimeZone")).scalar() == "Asia/Kathmandu"
            saved = uow.results.save(minimal(timestamp="2026-03-01T12:00:00+00:00"))
        with db.unit_of_work(readonly=True) as uow:
            stored = uow.results.get(saved.run.id).timestamp
            before = uow.results.count({"since": datetime(2026, 3, 1, 11, 59, tzinfo=UTC)})
            after = uow.results.count({"since": datetime(2026, 3, 1, 12, 1, tzinfo=UTC)})
            as_text = uow.session.execute(
                sa.text("SELECT to_char(timestamp AT TIME ZONE 'UTC', 'HH24:MI') FROM runs")
            ).scalar()
    assert stored == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert stored.tzinfo == UTC
    assert (before, after, as_text) == (1, 0, "12:00")


def test_upgrade_and_status_through_the_pooler(empty_postgres_url: str, pooler_port: int) -> None:
    url = through(empty_postgres_url, pooler_port)
    upgraded = cli("upgrade", "--database", url)
    assert upgraded.exit_code == 0, upgraded.output
    status = cli("status", "--json", "--database", url)
    assert status.exit_code == 0, status.output
    assert status.json()["pending"] == []


def test_events_follow_through_the_pooler(pooled_url: str) -> None:
    with Database(pooled_url) as db, db.unit_of_work() as uow:
        first = uow.events.append("test.tick")
    done: list[Any] = []
    follower = threading.Thread(
        target=lambda: done.append(
            cli_process(
                "events",
                "--follow",
                "--json",
                "--after",
                str(first),
                "--max-events",
                "1",
                "--timeout",
                "600",
                "--database",
                pooled_url,
                timeout=600,
            )
        )
    )
    follower.start()
    try:
        time.sleep(1)  # let it start following first: the commit must reach it
        with Database(pooled_url) as db, db.unit_of_work() as uow:
            second = uow.events.append("test.tock")
    finally:
        follower.join(timeout=120)  # it polls every second
    assert not follower.is_alive(), "karr-db events --follow did not see the event"
    (finished,) = done
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["id"] == second
