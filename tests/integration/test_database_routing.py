"""Where ``Database`` sends a unit of work, and the settings a deployment gives it,
on both dialects (the pooler and the standby themselves: tests/deploy)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from karr_db import Database
from karr_db.engine import behind_pooler, make_engine
from karr_db.errors import DatabaseURLError
from tests.support.documents import minimal


def test_without_a_replica_every_unit_of_work_uses_the_database(migrated_url: str) -> None:
    with Database(migrated_url) as db:
        assert db.replica is None
        for readonly, fresh in ((True, False), (True, True), (False, True)):
            assert db.engine_for(readonly=readonly, fresh=fresh) is db.engine
        with db.unit_of_work() as uow:
            saved = uow.results.save(minimal())
        with db.unit_of_work(readonly=True, fresh=True) as uow:
            assert uow.results.get(saved.run.id).model == "m"
        with db.unit_of_work(readonly=True) as uow:
            assert uow.results.count() == 1
            assert db.wait_for_events(0, timeout=5)  # the save's run.saved event


def test_a_replica_must_be_postgresql_like_its_primary(
    backend: str, migrated_url: str, tmp_path: Path
) -> None:
    other = (
        "postgresql://karr@127.0.0.1:1/karr"
        if backend == "sqlite"
        else f"sqlite:///{tmp_path / 'replica.db'}"
    )
    with pytest.raises(DatabaseURLError, match="replica"):
        Database(migrated_url, replica_url=other)


def test_a_refused_replica_releases_the_engines_it_made(
    backend: str, migrated_url: str, tmp_path: Path
) -> None:
    other = (
        "postgresql://karr@127.0.0.1:1/karr"
        if backend == "sqlite"
        else f"sqlite:///{tmp_path / 'replica.db'}"
    )
    disposed: list[str] = []

    def record(engine: sa.Engine) -> None:
        disposed.append(engine.url.get_backend_name())

    sa.event.listen(sa.Engine, "engine_disposed", record)
    try:
        with pytest.raises(DatabaseURLError, match="replica"):
            Database(migrated_url, replica_url=other)
    finally:
        sa.event.remove(sa.Engine, "engine_disposed", record)
    assert backend in disposed  # the primary's engine, not left to the garbage collector


def test_the_environments_replica_applies_to_a_postgresql_primary_only(
    backend: str, migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KARR_DATABASE_URL", migrated_url)
    monkeypatch.setenv("KARR_REPLICA_URL", "postgresql://karr@127.0.0.1:1/standby")
    with Database() as db:
        if backend == "sqlite":
            assert db.replica is None
            with db.unit_of_work(readonly=True) as uow:
                assert uow.results.count() == 0
        else:
            assert db.replica is not None
            assert db.replica.url.database == "standby"


def test_the_pooler_setting_is_read_from_the_url(backend: str, migrated_url: str) -> None:
    with pytest.raises(DatabaseURLError, match="karr_pooler"):
        make_engine(f"{migrated_url}?karr_pooler=sometimes")
    if backend == "sqlite":
        with pytest.raises(DatabaseURLError, match="postgresql"):
            make_engine(f"{migrated_url}?karr_pooler=true")
        return
    engine = make_engine(f"{migrated_url}?karr_pooler=false")
    try:
        assert "karr_pooler" not in str(engine.url)
        with engine.connect() as connection:
            assert not behind_pooler(connection)
            assert connection.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
