"""Upgrading, refusing, rolling back and racing migrations on both dialects."""

from __future__ import annotations

import multiprocessing
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.sql import visitors

from karr_db import migrations
from karr_db.engine import make_engine
from karr_db.errors import DowngradeRefusedError, NewerSchemaError, UnversionedDatabaseError
from karr_db.migrations.scripts import (
    alembic_config,
    contracts,
    head_revision,
    script_directory,
)
from karr_db.models import Base
from karr_db.repositories.results import RunFilter
from karr_db.repositories.results.repository import history_statement
from tests.support.helpers import alembic_versions, head_version, schema_versions
from tests.support.legacy import snapshot

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_package_schema_version_is_the_head_version() -> None:
    import karr_db

    assert head_version() == karr_db.SCHEMA_VERSION


def test_one_head_and_schema_version_records_kitts_numbers_only() -> None:
    script = script_directory()
    assert len(script.get_heads()) == 1
    declared = contracts(script)
    assert set(declared) == {r.revision for r in script.walk_revisions()}
    recorded = {
        revision: contract.reference_schema_version
        for revision, contract in declared.items()
        if contract.reference_schema_version is not None
    }
    # KITT's numbers, each by the revision that implements that schema: the
    # reference's 1 and 2, KITT's 3..11 from 0020 on; karr_db's own revisions
    # record nothing.
    assert recorded == {
        "0001": 1,
        "0002": 2,
        **{f"{17 + n:04d}": n for n in range(3, 12)},
    }


def test_upgrade_from_empty_creates_the_schema_and_records_versions(empty_url: str) -> None:
    before = migrations.status(empty_url)
    assert before.kind == "empty"
    assert before.pending == [
        r.revision for r in reversed(list(script_directory().walk_revisions()))
    ]

    report = migrations.upgrade(empty_url)

    assert report.applied == before.pending
    assert report.to_revision == head_revision()
    after = migrations.status(empty_url)
    assert after.kind == "managed"
    assert after.pending == []
    assert set(after.tables) == set(Base.metadata.tables)
    assert schema_versions(empty_url) == list(range(1, head_version() + 1))
    assert alembic_versions(empty_url) == [head_revision()]
    assert migrations.check(empty_url) == []


def test_status_counts_rows_per_table(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    with engine.begin() as connection:
        connection.execute(sa.insert(Base.metadata.tables["runs"]), [{"id": "r1"}, {"id": "r2"}])
    engine.dispose()
    counts = migrations.status(migrated_url).row_counts
    assert counts["runs"] == 2
    assert counts["schema_version"] == head_version()
    assert set(counts) == set(Base.metadata.tables)
    assert migrations.status(migrated_url, row_counts=False).row_counts == {}


def test_upgrade_twice_changes_nothing(migrated_url: str) -> None:
    before = snapshot(migrated_url)
    report = migrations.upgrade(migrated_url)
    assert report.applied == []
    assert snapshot(migrated_url) == before


def test_every_reference_index_exists_by_name(engine: sa.Engine) -> None:
    expected = {
        "idx_runs_model": ("runs", ["model"]),
        "idx_runs_engine": ("runs", ["engine"]),
        "idx_runs_suite_name": ("runs", ["suite_name"]),
        "idx_runs_timestamp": ("runs", ["timestamp"]),
        "idx_benchmarks_run_id": ("benchmarks", ["run_id"]),
        "idx_metrics_benchmark_id": ("metrics", ["benchmark_id"]),
        "idx_hardware_run_id": ("hardware", ["run_id"]),
        "idx_events_event_type": ("events", ["event_type"]),
        "idx_events_source_id": ("events", ["source_id"]),
        "idx_events_created_at": ("events", ["created_at"]),
    }
    inspector = sa.inspect(engine)
    found = {
        ix["name"]: (table, ix["column_names"])
        for table in inspector.get_table_names()
        for ix in inspector.get_indexes(table)
    }
    for name, where in expected.items():
        assert found.get(name) == where, name


def test_a_metric_historys_runs_and_benchmarks_are_in_its_indexes(engine: sa.Engine) -> None:
    """Revision 0030's indexes hold every column of runs and benchmarks that a
    dashboard's history page (a model and engine) reads, so the database can
    answer those two tables from the indexes alone."""
    statement, _ = history_statement(RunFilter(model="m", engine="e"), "avg_tps", None, None, 101)
    read: dict[str, set[str]] = {}
    for element in visitors.iterate(statement):
        if isinstance(element, sa.Column) and isinstance(element.table, sa.Table):
            read.setdefault(element.table.name, set()).add(element.name)
    inspector = sa.inspect(engine)
    columns = {
        ix["name"]: ix["column_names"]
        for table in ("runs", "benchmarks")
        for ix in inspector.get_indexes(table)
    }
    runs = columns["idx_runs_model_engine_history"]
    benchmarks = columns["idx_benchmarks_run_history"]
    assert runs == ["model", "engine", "timestamp", "id"]
    assert benchmarks == ["run_id", "id", "test_name", "run_number"]
    assert read["runs"] <= set(runs)
    assert read["benchmarks"] <= set(benchmarks)


def test_check_reports_drift_and_a_broken_bridge(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP INDEX idx_runs_model")
        connection.exec_driver_sql("ALTER TABLE runs ADD COLUMN surprise TEXT")
        connection.exec_driver_sql(f"DELETE FROM schema_version WHERE version = {head_version()}")
    engine.dispose()
    findings = migrations.check(migrated_url)
    messages = " | ".join(f.message for f in findings)
    assert {f.kind for f in findings} >= {"drift", "bridge"}
    assert "idx_runs_model" in messages
    assert "surprise" in messages
    assert f"schema_version says {head_version() - 1}" in messages


def test_check_notices_a_missing_trigger(migrated_url: str) -> None:
    script = script_directory()
    dialect = make_engine(migrated_url).dialect.name
    names = [
        trigger.name
        for contract in contracts(script).values()  # oldest first: 0003's, on events
        for trigger in contract.triggers_on(dialect)
    ]
    if not names:
        pytest.fail("no revision declares triggers; this test guards the append-only guard")
    engine = make_engine(migrated_url)
    with engine.begin() as connection:
        on = "" if dialect == "sqlite" else " ON events"
        connection.exec_driver_sql(f"DROP TRIGGER {names[0]}{on}")
    engine.dispose()
    assert [f.message for f in migrations.check(migrated_url)] == [
        f"event-log guard: trigger {names[0]} missing from the database (or disabled)"
    ]


def test_check_notices_a_disabled_trigger(migrated_postgres_url: str) -> None:
    # PostgreSQL alone: SQLite cannot disable a trigger, only drop it (tested above).
    migrated_url = migrated_postgres_url
    engine = make_engine(migrated_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE events DISABLE TRIGGER USER")
    engine.dispose()
    findings = migrations.check(migrated_url)
    assert findings
    assert all("disabled" in f.message for f in findings)


def test_unknown_alembic_revision_is_refused(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff9999'")
    engine.dispose()
    before = snapshot(migrated_url)
    with pytest.raises(NewerSchemaError, match="ffff9999"):
        migrations.upgrade(migrated_url)
    assert snapshot(migrated_url) == before


def test_tables_without_version_information_are_refused(empty_url: str) -> None:
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE runs (id TEXT PRIMARY KEY, model TEXT)")
        connection.exec_driver_sql("INSERT INTO runs VALUES ('r1', 'm')")
    engine.dispose()
    before = snapshot(empty_url)
    with pytest.raises(UnversionedDatabaseError, match="runs"):
        migrations.upgrade(empty_url)
    assert snapshot(empty_url) == before


def test_downgrade_is_refused_and_changes_nothing(migrated_url: str) -> None:
    before = snapshot(migrated_url)
    config = alembic_config()
    config.attributes["engine"] = make_engine(migrated_url)
    with pytest.raises(DowngradeRefusedError, match="forward-only"):
        command.downgrade(config, "base")
    config.attributes["engine"].dispose()
    assert snapshot(migrated_url) == before


def test_downgrade_through_the_alembic_command_fails_cleanly(
    migrated_url: str, run_alembic: Any
) -> None:
    before = snapshot(migrated_url)
    result = run_alembic(migrated_url, "downgrade", "-1")
    assert result.returncode != 0
    assert "forward-only" in result.stderr
    assert snapshot(migrated_url) == before


FAILING_REVISION = '''
"""A revision that fails halfway, for the rollback test."""
import sqlalchemy as sa
from alembic import op

from karr_db.migrations import ops

revision = "9999"
down_revision = {down!r}
branch_labels = None
depends_on = None
contract = ops.RevisionContract(reference_schema_version={version})


def upgrade():
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    sqlite = op.get_context().dialect.name == "sqlite"
    with op.batch_alter_table("runs", recreate="always" if sqlite else "auto") as batch:
        batch.add_column(sa.Column("surprise", sa.Text()))
    op.execute("INSERT INTO half_done (id) VALUES (1)")
    op.execute("UPDATE runs SET model = 'overwritten'")
    op.execute("INSERT INTO schema_version (version) VALUES ({version})")
    raise RuntimeError("boom halfway through")


def downgrade():
    raise NotImplementedError
'''


@pytest.fixture
def failing_scripts(tmp_path: Path) -> Path:
    """A copy of the migration scripts with one more revision that fails halfway."""
    target = tmp_path / "alembic"
    shutil.copytree(
        REPO_ROOT / "karr_db" / "migrations" / "alembic",
        target,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (target / "versions" / "9999_fails.py").write_text(
        FAILING_REVISION.format(down=head_revision(), version=head_version() + 1)
    )
    return target


def _upgrade_with(scripts: Path, url: str) -> None:
    config = alembic_config()
    config.set_main_option("script_location", str(scripts))
    engine = make_engine(url)
    config.attributes["engine"] = engine
    try:
        command.upgrade(config, "heads")
    finally:
        engine.dispose()


def test_failing_revision_leaves_a_migrated_database_as_it_was(
    migrated_url: str, failing_scripts: Path
) -> None:
    engine = make_engine(migrated_url)
    with engine.begin() as connection:
        connection.execute(sa.insert(Base.metadata.tables["runs"]).values(id="r1", model="kept"))
    engine.dispose()
    before = snapshot(migrated_url)
    with pytest.raises(RuntimeError, match="boom halfway"):
        _upgrade_with(failing_scripts, migrated_url)
    assert snapshot(migrated_url) == before


def test_failing_revision_leaves_an_empty_database_empty(
    empty_url: str, failing_scripts: Path
) -> None:
    with pytest.raises(RuntimeError, match="boom halfway"):
        _upgrade_with(failing_scripts, empty_url)
    assert snapshot(empty_url) in ({}, {"sqlite_master": []})


def _upgrade_at(url: str, start: float) -> str:
    time.sleep(max(0.0, start - time.time()))
    report = migrations.upgrade(url)
    return ",".join(report.applied)


def test_concurrent_upgrades_all_succeed_and_run_each_revision_once(empty_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    workers = 4
    with context.Pool(workers) as pool:
        start = time.time() + 3.0  # let every process import first, then race
        results = pool.starmap(_upgrade_at, [(empty_url, start)] * workers, chunksize=1)
    applied = [r for r in results if r]
    assert len(applied) == 1, results  # exactly one process did the work
    assert schema_versions(empty_url) == list(range(1, head_version() + 1))
    assert alembic_versions(empty_url) == [head_revision()]
    assert migrations.check(empty_url) == []


def test_alembic_upgrade_head_uses_karr_database_url(empty_url: str, run_alembic: Any) -> None:
    result = run_alembic(empty_url, "upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert alembic_versions(empty_url) == [head_revision()]
    again = run_alembic(empty_url, "current")
    assert head_revision() in again.stdout


def test_offline_sql_is_usable_postgresql_ddl(empty_postgres_url: str, run_alembic: Any) -> None:
    empty_url = empty_postgres_url
    result = run_alembic(empty_url, "upgrade", "head", "--sql")
    assert result.returncode == 0, result.stderr
    sql = result.stdout
    for fragment in (
        "CREATE TABLE runs",
        "TIMESTAMP WITH TIME ZONE",
        "JSONB",
        "SERIAL",
        "DOUBLE PRECISION",
        "BOOLEAN",
        "pg_advisory_xact_lock",
        "INSERT INTO schema_version",
        "INSERT INTO alembic_version",
    ):
        assert fragment in sql, fragment
    import psycopg

    with psycopg.connect(empty_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(sql.encode())
    assert migrations.check(empty_url) == []
    assert schema_versions(empty_url) == list(range(1, head_version() + 1))


def test_wheel_carries_the_migration_scripts(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(REPO_ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("karr_db-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "karr_db/migrations/alembic/env.py" in names
    assert any(n.startswith("karr_db/migrations/alembic/versions/0001") for n in names)

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    database = tmp_path / "from-wheel.db"
    probe = textwrap.dedent(
        f"""
        import karr_db, karr_db.migrations as m
        from karr_db.migrations.scripts import script_location
        assert karr_db.__file__.startswith({str(site)!r}), karr_db.__file__
        assert script_location().parent.name == "migrations", script_location()
        m.upgrade("sqlite:///{database}")
        print(m.status("sqlite:///{database}").kind.value)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(site), "PATH": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "managed"


def test_check_words_a_changed_column_type(migrated_postgres_url: str) -> None:
    # PostgreSQL alone: SQLite cannot change a column's type in place.
    engine = make_engine(migrated_postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE runs ALTER COLUMN kitt_version TYPE varchar(20)")
    engine.dispose()
    (finding,) = migrations.check(migrated_postgres_url)
    assert finding.kind == "drift"
    assert finding.message.startswith(
        "runs.kitt_version: type is VARCHAR(length=20) in the database"
    )
    assert finding.message.endswith("in the models")


def test_revision_0029_runs_again_over_its_own_triggers(
    migrated_url: str, run_alembic: Any
) -> None:
    """Like revision 0013, 0029 drops its triggers before creating them."""
    stamped = run_alembic(migrated_url, "stamp", "0028")
    assert stamped.returncode == 0, stamped.stderr[-2000:]
    again = run_alembic(migrated_url, "upgrade", "0029")
    assert again.returncode == 0, again.stderr[-2000:]
    assert alembic_versions(migrated_url) == ["0029"]
