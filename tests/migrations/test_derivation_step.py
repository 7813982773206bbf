"""Derivation is ``upgrade``'s own step after the revisions, not part of adoption.

Adoption (and revision 0007) queue the runs in ``karr_pending_derivation``; the
database is not ready, ``status`` counts the queued runs and ``check`` reports
them until ``upgrade``'s step has derived them, a committed batch at a time. A
step stopped between batches, or killed, resumes on the next ``upgrade`` and
ends with the rows of an uninterrupted one.
"""

from __future__ import annotations

import math
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from karr_db import Database, migrations
from karr_db.engine import make_engine
from karr_db.errors import NotReadyError
from karr_db.migrations import pending, timestamps
from karr_db.migrations.derivation import derive_pending
from karr_db.migrations.scripts import alembic_config
from karr_db.models import Benchmark, Hardware, LeaderboardAggregate, Metric, RunFingerprint
from tests.support.cli import cli
from tests.support.legacy import LegacyResults, build_legacy_results

REPO_ROOT = Path(__file__).resolve().parents[2]


def _revisions_only(url: str) -> None:
    """Adoption and the revisions as Alembic runs them, without ``upgrade``'s step."""
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    try:
        config = alembic_config()
        config.attributes["engine"] = engine
        config.attributes[timestamps.ATTR_OPTION] = None
        command.upgrade(config, "head")
    finally:
        engine.dispose()


def _count(url: str, sql: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.exec_driver_sql(sql).scalar_one())
    finally:
        engine.dispose()


def _value(value: Any) -> Any:
    return "NaN" if isinstance(value, float) and math.isnan(value) else value


def _derived_content(url: str) -> dict[str, Any]:
    """Every derived row, without the ids and insertion times a resumed step may
    number differently: per run its benchmarks in id order, each with its metrics
    in id order; hardware; fingerprint owners; the leaderboard aggregate."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            b = Benchmark.__table__.c
            benchmarks = connection.execute(
                sa.select(
                    b.id, b.run_id, b.test_name, b.test_version, b.run_number, b.passed, b.timestamp
                ).order_by(b.id)
            ).all()
            m = Metric.__table__.c
            metrics: dict[int, list[tuple[Any, ...]]] = {}
            for bid, name, value in connection.execute(
                sa.select(m.benchmark_id, m.metric_name, m.metric_value).order_by(m.id)
            ):
                metrics.setdefault(bid, []).append((name, _value(value)))
            runs: dict[str, list[Any]] = {}
            for row in benchmarks:
                runs.setdefault(row.run_id, []).append((tuple(row[2:]), metrics.get(row.id, [])))
            hardware = sorted(
                tuple(_value(v) for k, v in row._mapping.items() if k != "id")
                for row in connection.execute(sa.select(Hardware.__table__))
            )
            owners = sorted(connection.execute(sa.select(RunFingerprint.__table__)).all())
            aggregate = sorted(
                (
                    tuple(_value(v) for v in row)
                    for row in connection.execute(sa.select(LeaderboardAggregate.__table__))
                ),
                key=repr,
            )
    finally:
        engine.dispose()
    return {"runs": runs, "hardware": hardware, "owners": owners, "aggregate": aggregate}


def _nested(url: str) -> int:
    return _count(url, "SELECT count(*) FROM metrics WHERE metric_name = 'ttft_ms.p50'")


def test_adoption_leaves_derivation_pending_until_upgrade_runs_its_step(
    empty_url: str, samples_dir: Path, run_alembic: Any
) -> None:
    legacy: LegacyResults = build_legacy_results(empty_url, samples_dir)
    runs = len(legacy.runs)
    done = run_alembic(empty_url, "upgrade", "head")  # the revisions alone, as a DBA may
    assert done.returncode == 0, done.stderr

    status = migrations.status(empty_url)
    assert status.alembic_revision == status.head_revision
    assert status.pending == []
    assert status.derivation_pending == runs
    assert _count(empty_url, "SELECT count(*) FROM run_fingerprints") == 0
    assert _nested(empty_url) == 0  # only the earlier system's top-level metrics
    findings = migrations.check(empty_url)
    assert [f.kind for f in findings] == ["derivation"]
    assert f"derivation pending ({runs} run(s)" in findings[0].message
    shown = cli("status", "--database", empty_url)
    assert shown.exit_code == 0, shown.output
    assert re.search(rf"derivation pending\s+{runs} runs: run `karr-db upgrade`", shown.stdout)
    checked = cli("check", "--database", empty_url)
    assert checked.exit_code == 1
    assert f"derivation pending ({runs} run(s)" in checked.output
    with pytest.raises(NotReadyError) as refused:
        migrations.require_current(empty_url)
    assert refused.value.kind == "derivation"
    assert "karr-db upgrade" in str(refused.value)
    with (  # reads too: they would miss the rows not derived yet
        Database(empty_url) as database,
        pytest.raises(NotReadyError),
        database.unit_of_work(readonly=True),
    ):
        pass

    upgraded = cli("upgrade", "--database", empty_url, "--json")
    assert upgraded.exit_code == 0, upgraded.output
    report = upgraded.json()
    assert report["applied"] == []
    assert not report["adopted"]
    derived = report["derived"]
    assert derived["runs"] == runs
    assert derived["fingerprints_added"] == runs - 1  # the duplicate's older copy owns it
    assert derived["metrics_added"] > 0
    assert derived["refused"] == 0
    assert migrations.status(empty_url).derivation_pending == 0
    assert migrations.check(empty_url) == []
    migrations.require_current(empty_url)
    assert _nested(empty_url) == legacy.ttft_results
    assert migrations.upgrade(empty_url).derived is None  # nothing queued any more


def test_upgrade_of_a_legacy_database_derives_in_the_same_call(
    empty_url: str, samples_dir: Path, copy_database: Any
) -> None:
    """One ``upgrade`` adopts and derives; its rows are the revisions-then-step rows."""
    legacy = build_legacy_results(empty_url, samples_dir)
    twin = copy_database(empty_url)
    shown = cli("upgrade", "--database", twin)
    assert shown.exit_code == 0, shown.output
    assert f"derived the rows of {len(legacy.runs)} run(s) from their documents" in shown.stdout
    twin, again = copy_database(empty_url), twin
    report = migrations.upgrade(empty_url)
    assert report.adopted
    assert report.derived is not None
    assert report.derived.runs == len(legacy.runs)
    assert migrations.status(empty_url).derivation_pending == 0
    _revisions_only(twin)
    derive_pending(make_engine(twin), batch_size=4)
    assert _derived_content(twin) == _derived_content(empty_url)
    assert _derived_content(again) == _derived_content(empty_url)


class _Stopped(Exception):
    """The caller failing after a committed batch."""


def test_a_step_stopped_between_batches_resumes_to_the_rows_of_an_uninterrupted_one(
    empty_url: str, samples_dir: Path, copy_database: Any
) -> None:
    legacy = build_legacy_results(empty_url, samples_dir)
    runs = len(legacy.runs)
    twin = copy_database(empty_url)
    migrations.upgrade(twin)
    _revisions_only(empty_url)

    def stop(done: int, total: int) -> None:
        if done >= 6:
            raise _Stopped

    engine = make_engine(empty_url)
    try:
        with pytest.raises(_Stopped):
            derive_pending(engine, batch_size=3, progress=stop)
    finally:
        engine.dispose()
    assert migrations.status(empty_url).derivation_pending == runs - 6
    report = migrations.upgrade(empty_url)
    assert report.derived is not None
    assert report.derived.runs == runs - 6
    assert migrations.status(empty_url).derivation_pending == 0
    assert migrations.check(empty_url) == []
    assert _derived_content(empty_url) == _derived_content(twin)


#: Derives two runs a batch and says when each batch has committed.
_DERIVE = (
    "import sys\n"
    "from karr_db.engine import make_engine\n"
    "from karr_db.migrations.derivation import derive_pending\n"
    "derive_pending(make_engine(sys.argv[1]), batch_size=2,"
    " progress=lambda done, total: print(done, flush=True))\n"
)


def test_a_killed_step_resumes_to_the_rows_of_an_uninterrupted_one(
    empty_url: str, samples_dir: Path, copy_database: Any
) -> None:
    legacy = build_legacy_results(empty_url, samples_dir)
    twin = copy_database(empty_url)
    migrations.upgrade(twin)
    _revisions_only(empty_url)

    process = subprocess.Popen(
        [sys.executable, "-c", _DERIVE, empty_url],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "2"  # a batch committed, the next under way
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
        if process.stdout is not None:
            process.stdout.close()
    left = migrations.status(empty_url).derivation_pending
    assert 0 < left <= len(legacy.runs) - 2

    report = migrations.upgrade(empty_url)
    assert report.derived is not None
    assert report.derived.runs == left
    assert migrations.status(empty_url).derivation_pending == 0
    assert migrations.check(empty_url) == []
    assert _derived_content(empty_url) == _derived_content(twin)


def test_a_database_behind_revision_0007_queues_its_runs_and_upgrade_derives_them(
    migrated_url: str, copy_database: Any
) -> None:
    """Revision 0007 derives nothing itself: a karr_db database from before it gets its
    fingerprints from the step, a content-derived id being its own fingerprint."""
    with Database(migrated_url) as database, database.unit_of_work() as unit:
        saved = unit.results.save(
            '{"model": "m", "engine": "e", "timestamp": "2026-01-01T00:00:00", '
            '"results": [{"test_name": "t", "metrics": {"a": {"p50": 1.5}}}]}'
        ).run.id
    engine = make_engine(migrated_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM run_fingerprints")
            pending.mark(connection)  # revision 0007's statements
    finally:
        engine.dispose()
    assert migrations.status(migrated_url).derivation_pending == 1
    report = migrations.upgrade(migrated_url)
    assert report.derived is not None
    assert (report.derived.runs, report.derived.fingerprints_added) == (1, 1)
    assert report.derived.metrics_added == 0  # a save derived them already
    engine = make_engine(migrated_url)
    try:
        with engine.connect() as connection:
            owners = connection.exec_driver_sql("SELECT fingerprint, run_id FROM run_fingerprints")
            assert owners.all() == [(saved, saved)]
    finally:
        engine.dispose()
    assert migrations.check(migrated_url) == []


def test_a_database_migrated_before_the_queue_existed_is_ready_and_clean(
    migrated_url: str, samples_dir: Path
) -> None:
    """Databases that passed revision 0007 before it declared the queue have no
    ``karr_pending_derivation``: nothing is pending, they read, write, pass ``check``
    and upgrade as any other database at the head."""
    with Database(migrated_url) as db, db.unit_of_work() as uow:
        uow.results.save((samples_dir / "sample_decode_speed.json").read_text())
    engine = make_engine(migrated_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP TABLE {pending.TABLE}")
    finally:
        engine.dispose()
    with Database(migrated_url) as db:
        assert db.status().derivation_pending == 0
        assert db.check() == []
        assert db.upgrade().derived is None
        with db.unit_of_work(readonly=True) as uow:
            assert uow.results.count() == 1
