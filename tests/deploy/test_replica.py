"""A primary and a hot standby made for the test (``pg_createcluster``,
``pg_basebackup -R``): read-only units of work run on the standby, everything
else on the primary, ``fresh=True`` reads one's own writes, and followers wake
on the standby although NOTIFY is not replicated."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from karr_db import Database, migrations
from karr_db.engine import make_engine
from tests.deploy.deploy_helpers import follower_wakes
from tests.support.cli import cli
from tests.support.documents import minimal
from tests.support.servers import Cluster, create_database, primary_and_standby

pytestmark = pytest.mark.postgres_only


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[str, str, Cluster, Cluster]]:
    """(primary URL, standby URL, primary, standby) of a migrated database ``karr``."""
    with primary_and_standby() as (primary, standby):
        create_database(primary.url(), "karr")
        migrations.upgrade(primary.url("karr"))
        _replayed(primary.url("karr"), standby.url("karr"))
        yield primary.url("karr"), standby.url("karr"), primary, standby


def _sql(url: str, statement: str) -> Any:
    engine = make_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.exec_driver_sql(statement).scalar()
    finally:
        engine.dispose()


def _replayed(primary: str, standby: str) -> None:
    """Wait until the standby has replayed everything the primary has written."""
    target = _sql(primary, "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if _sql(standby, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"):
            return
        time.sleep(0.05)
    raise AssertionError("the standby did not catch up")


def _server(session: Session) -> tuple[bool, int]:
    """Whether the unit of work runs on a standby, and that server's port."""
    row = session.execute(sa.text("SELECT pg_is_in_recovery(), inet_server_port()")).one()
    return bool(row[0]), int(row[1])


@pytest.fixture
def paused(clusters: tuple[str, str, Cluster, Cluster]) -> Iterator[None]:
    """Replay paused on the standby (lag made visible), resumed afterwards."""
    primary, standby, _, _ = clusters
    _replayed(primary, standby)
    _sql(standby, "SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        _sql(standby, "SELECT pg_wal_replay_resume()")
        _replayed(primary, standby)


def test_read_only_units_of_work_run_on_the_replica(
    clusters: tuple[str, str, Cluster, Cluster],
) -> None:
    primary_url, standby_url, primary, standby = clusters
    with Database(primary_url, replica_url=standby_url) as db:
        with db.unit_of_work(readonly=True) as uow:
            assert _server(uow.session) == (True, standby.port)
        with db.unit_of_work() as uow:
            assert _server(uow.session) == (False, primary.port)
        with db.unit_of_work(readonly=True, fresh=True) as uow:
            assert _server(uow.session) == (False, primary.port)


def test_the_environment_names_the_replica(
    clusters: tuple[str, str, Cluster, Cluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    primary_url, standby_url, primary, standby = clusters
    monkeypatch.setenv("KARR_DATABASE_URL", primary_url)
    monkeypatch.setenv("KARR_REPLICA_URL", standby_url)
    with Database() as db, db.unit_of_work(readonly=True) as uow:
        assert _server(uow.session) == (True, standby.port)
    with Database(primary_url) as db, db.unit_of_work(readonly=True) as uow:
        assert _server(uow.session) == (False, primary.port)  # an explicit URL: no replica


@pytest.mark.usefixtures("paused")
def test_reads_lag_the_primary_and_fresh_reads_see_own_writes(
    clusters: tuple[str, str, Cluster, Cluster],
) -> None:
    primary_url, standby_url, _, _ = clusters
    with Database(primary_url, replica_url=standby_url) as db:
        with db.unit_of_work(readonly=True) as uow:
            before = uow.results.count()
        with db.unit_of_work() as uow:
            saved = uow.results.save(minimal(model="lagging"))
        with db.unit_of_work(readonly=True) as uow:
            assert uow.results.count() == before  # not replayed yet
        with db.unit_of_work(readonly=True, fresh=True) as uow:
            assert uow.results.get(saved.run.id).model == "lagging"
        listed = cli("list", "--json", "--database", primary_url, "--replica", standby_url)
        assert listed.exit_code == 0, listed.output
        assert listed.json()["total"] == before
        listed = cli("list", "--json", "--database", primary_url)
        assert listed.json()["total"] == before + 1


def test_waiting_for_events_works_against_the_replica(
    clusters: tuple[str, str, Cluster, Cluster],
) -> None:
    primary_url, standby_url, _, _ = clusters
    with Database(primary_url, replica_url=standby_url) as db:
        # NOTIFY is not replicated: it polls the standby, and wakes once it replayed the event.
        assert follower_wakes(db), "the follower on the replica did not wake"
