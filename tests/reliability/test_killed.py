"""SIGKILL in the middle: an import leaves whole runs or none; an upgrade leaves the old
version or the new one. Afterwards the same command finishes the job."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from karr_db import Database, migrations
from karr_db.engine import make_engine
from karr_db.importing import import_paths
from karr_db.models import Run
from karr_db.uow import transaction
from tests.reliability.reliability_helpers import (
    budget,
    check_store,
    load_samples,
    write_tree,
)
from tests.reliability.reliability_helpers import variant as make_variant
from tests.support.legacy import build_legacy
from tests.support.workers import engine_for

pytestmark = pytest.mark.reliability

REPO_ROOT = Path(__file__).resolve().parents[2]

IMPORT_SCRIPT = (
    "import sys\n"
    "from karr_db.engine import make_engine\n"
    "from karr_db.importing import import_paths\n"
    "import_paths(make_engine(sys.argv[1]), [sys.argv[2]])\n"
)


def _count_runs(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(Run)).scalar_one())


def _kill_when(process: subprocess.Popen[bytes], ready: Any, rng: random.Random) -> bool:
    """SIGKILL ``process`` a random moment after ``ready()`` holds; whether it was still running."""
    deadline = time.monotonic() + 120
    while process.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.05))
    alive = process.poll() is None
    if alive:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    return alive


def test_killed_import_leaves_whole_runs_and_resumes(
    migrated_url: str, backend: str, samples_dir: Path, tmp_path: Path, figures: Any
) -> None:
    """Rounds of 300 new documents; in each, importers are killed at random moments until
    one finishes (at most 3 kills a round), then an in-process import completes it. CI stops
    after 3 kills (or 5 rounds); ``make soak`` goes on for its share of the time."""
    documents = 300
    rng = random.Random(f"import-{backend}-{time.time_ns()}")
    samples = load_samples(samples_dir)
    seconds = budget(0, 0.15)
    kills = progressed = checked_rows = rounds = 0
    estimate = 3.0  # seconds an uncut import process takes; adapted as trials go
    with engine_for(migrated_url) as engine:
        started = time.monotonic()
        while (kills < 3 and rounds < 5) or time.monotonic() - started < seconds:
            tree = tmp_path / f"round-{rounds}"
            docs = [
                make_variant(samples, f"kill-{rounds}-{n}", extra_metrics=20)
                for n in range(documents)
            ]
            write_tree(docs, tree)
            total = documents * (rounds + 1)
            for _ in range(3):
                before = _count_runs(engine)
                if before >= total:
                    break
                delay = rng.uniform(0.3, 1.0) * estimate
                launched = time.monotonic()
                with subprocess.Popen(
                    [sys.executable, "-c", IMPORT_SCRIPT, migrated_url, str(tree)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ) as process:
                    alive = _kill_when(
                        process, lambda t=launched + delay: time.monotonic() >= t, rng
                    )
                if alive:
                    kills += 1
                else:
                    estimate = 0.8 * (time.monotonic() - launched)
                check = check_store(engine)  # whole runs only, no orphans
                checked_rows += check.rows
                assert check.runs >= before
                progressed += alive and before < check.runs < total
            report = import_paths(engine, [tree])
            assert not report.rejected, report.rejected
            again = import_paths(engine, [tree])
            assert len(again.already_present) == documents
            check = check_store(engine)
            assert check.runs == total
            checked_rows += check.rows
            rounds += 1
        with transaction(engine) as uow:
            ids = Counter(uow.session.scalars(sa.select(Run.id)))
        assert len(ids) == documents * rounds
    figures["dialect"] = backend
    figures["documents"] = documents * rounds
    figures["rounds"] = rounds
    figures["kills"] = kills
    figures["kills_after_partial_progress"] = progressed
    figures["rows_checked"] = checked_rows


# --- a killed upgrade ----------------------------------------------------------------


def _grow_legacy(url: str, copies: int) -> None:
    """Multiply the legacy sample rows so that adopting them takes a while."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    numbers = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :k) "
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                numbers + "INSERT INTO runs (id, model, engine, suite_name, timestamp, passed, "
                "total_benchmarks, passed_count, failed_count, total_time_seconds, kitt_version, "
                "raw_json, created_at) SELECT r.id || '-copy-' || n.i, r.model, r.engine, "
                "r.suite_name, r.timestamp, r.passed, r.total_benchmarks, r.passed_count, "
                "r.failed_count, r.total_time_seconds, r.kitt_version, r.raw_json, r.created_at "
                "FROM runs r CROSS JOIN n"
            ),
            {"k": copies},
        )
        connection.execute(
            sa.text(
                numbers + "INSERT INTO benchmarks (id, run_id, test_name, test_version, "
                "run_number, passed, timestamp, created_at) SELECT b.id + 100000 * n.i, "
                "b.run_id || '-copy-' || n.i, b.test_name, b.test_version, b.run_number, "
                "b.passed, b.timestamp, b.created_at FROM benchmarks b CROSS JOIN n"
            ),
            {"k": copies},
        )
        connection.execute(
            sa.text(
                numbers + "INSERT INTO metrics (benchmark_id, metric_name, metric_value) "
                "SELECT m.benchmark_id + 100000 * n.i, m.metric_name, m.metric_value "
                "FROM metrics m CROSS JOIN n"
            ),
            {"k": copies},
        )
    engine.dispose()


def _fingerprint(url: str) -> dict[str, Any]:
    """Tables, columns with types, and row counts: enough to tell old from new from between."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            result: dict[str, Any] = {}
            for table in sorted(inspector.get_table_names()):
                count = connection.exec_driver_sql(f'SELECT count(*) FROM "{table}"').scalar()
                columns = [(c["name"], str(c["type"])) for c in inspector.get_columns(table)]
                indexes = sorted(ix["name"] or "" for ix in inspector.get_indexes(table))
                result[table] = (columns, indexes, count)
            return result
    finally:
        engine.dispose()


def test_killed_upgrade_leaves_old_or_new_version(
    empty_url: str,
    backend: str,
    samples_dir: Path,
    copy_database: Callable[[str], str],
    figures: Any,
) -> None:
    build_legacy(empty_url, 2, samples_dir)
    _grow_legacy(empty_url, 400)
    old = _fingerprint(empty_url)
    rng = random.Random(f"upgrade-{backend}-{time.time_ns()}")

    def run_upgrade(url: str) -> subprocess.Popen[bytes]:
        # `karr-db upgrade`: adoption and the revisions in one transaction, then
        # the derivation step a committed batch at a time.
        return subprocess.Popen(
            [sys.executable, "-m", "karr_db.cli", "upgrade", "--json", "--database", url],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    # One uncut run: what "new" looks like, and how long an upgrade takes.
    reference = copy_database(empty_url)
    started = time.monotonic()
    with run_upgrade(reference) as process:
        assert process.wait(timeout=600) == 0
    duration = time.monotonic() - started
    new = _fingerprint(reference)
    assert migrations.check(reference) == []
    versions = {"schema_version", "alembic_version"}
    # The derivation step adds the rows a save derives from each raw_json.
    derived = {"benchmarks", "metrics", "hardware"}
    assert {t: c for t, (_, _, c) in new.items() if t in old and t not in versions | derived} == {
        t: c for t, (_, _, c) in old.items() if t not in versions | derived
    }
    assert all(new[t][2] >= old[t][2] for t in derived if t in old)

    outcomes: Counter[str] = Counter()
    seconds = budget(0, 0.1)
    trials = 0
    started = time.monotonic()
    while trials < 3 or time.monotonic() - started < seconds:
        url = copy_database(empty_url)
        with run_upgrade(url) as process:
            delay = rng.uniform(0.4, 0.95) * duration
            kill_at = time.monotonic() + delay
            alive = _kill_when(process, lambda t=kill_at: time.monotonic() >= t, rng)
        if backend == "postgresql":
            _wait_for_orphaned_backends(url)
        state = _fingerprint(url)
        if state == old:
            outcomes["old"] += 1
        elif state == new:
            assert migrations.check(url) == []
            outcomes["new"] += 1
        else:
            # Adopted, with derivation part-way: every batch committed or not at all,
            # the rest queued, the database refused until upgrade finishes it.
            status = migrations.status(url)
            assert status.alembic_revision == status.head_revision, state
            assert status.derivation_pending > 0
            assert [f.kind for f in migrations.check(url)] == ["derivation"]
            outcomes["deriving"] += 1
        outcomes["killed" if alive else "finished"] += 1
        migrations.upgrade(url)  # the same command afterwards completes the job
        assert _fingerprint(url) == new
        assert migrations.check(url) == []
        trials += 1
        if backend == "sqlite":
            os.remove(url.removeprefix("sqlite:///"))
    figures["dialect"] = backend
    figures["rows"] = sum(c for _, _, c in old.values())
    figures["upgrade_seconds"] = round(duration, 1)
    figures["trials"] = trials
    figures.values.update(outcomes)


def _wait_for_orphaned_backends(url: str) -> None:
    """A killed client's backend runs on until its statement ends, then rolls back; wait."""
    database = sa.engine.make_url(url).database
    engine = make_engine(url)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                others = connection.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = :d AND pid <> pg_backend_pid()"
                    ),
                    {"d": database},
                ).scalar_one()
            if others == 0:
                return
            time.sleep(0.05)
        raise AssertionError("a killed upgrade's backend is still running after 120 s")
    finally:
        engine.dispose()


# --- a killed rederive -----------------------------------------------------------------

#: Runs ``rederive`` and says when it has derived its first batch.
REDERIVE_SCRIPT = (
    "import sys\n"
    "from karr_db.derive import rederive\n"
    "rederive(sys.argv[1], batch_size=250, progress=lambda done, total: print(done, flush=True))\n"
)


def _holders_of_the_log_lock(url: str) -> int:
    """Backends of other sessions holding an advisory lock on ``url``'s database."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                        "WHERE l.locktype = 'advisory' AND l.granted "
                        "AND a.datname = current_database() AND a.pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


@pytest.mark.postgres_only
def test_killed_rederive_leaves_no_one_holding_its_connection(
    migrated_postgres_url: str, figures: Any
) -> None:
    """SIGKILL of ``rederive`` while it derives 2,500 runs: nothing it started keeps its
    connection (and with it the event log's lock), so the next save goes through."""
    url = migrated_postgres_url
    runs = 2_500
    documents = [
        {
            "model": f"m{n % 7}",
            "engine": "vllm",
            "suite_name": f"s{n}",
            "timestamp": "2026-01-01T00:00:00",
            "results": [{"test_name": "t", "metrics": {"tps": float(n), "ttft_ms": {"p50": 1.0}}}],
        }
        for n in range(runs)
    ]
    with Database(url) as db, db.unit_of_work() as unit:
        unit.results.save_many(documents)
    with engine_for(url) as engine, engine.begin() as connection:
        # Rows for rederive to derive again.
        connection.exec_driver_sql("DELETE FROM metrics")
    process = subprocess.Popen(
        [sys.executable, "-c", REDERIVE_SCRIPT, url],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: whatever it leaves is removed below
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # a batch derived: the rest is under way
        assert first.strip(), "rederive ended before deriving a batch"
        assert _holders_of_the_log_lock(url) > 0
        process.kill()
        process.wait(timeout=60)
        _save_goes_through(url, documents[0] | {"suite_name": "after"})
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    figures["dialect"] = "postgresql"
    figures["runs"] = runs
    figures["kills"] = 1


def _save_goes_through(url: str, document: dict[str, Any]) -> None:
    """A save through the public API finishes within a minute (a blocked one never would)."""
    saved: list[str] = []

    def save() -> None:
        with Database(url) as db, db.unit_of_work() as unit:
            saved.append(unit.results.save(document).run.id)

    writer = threading.Thread(target=save, daemon=True)
    writer.start()
    writer.join(timeout=60)
    assert saved, "a save is still blocked 60 s after rederive was killed"
    assert _holders_of_the_log_lock(url) == 0
