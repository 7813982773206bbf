"""Adopting databases written by the earlier migration system (no alembic_version)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from karr_db import migrations
from karr_db.engine import make_engine
from karr_db.errors import AdoptionError
from karr_db.migrations.scripts import head_revision
from karr_db.migrations.timestamps import is_canonical
from karr_db.models import Base
from karr_db.models.types import UTCDateTime, parse_timestamp
from tests.support.adoption import (
    ADDED_TO,
    assert_rows_kept,
    expected_row,
    raw_rows,
    typed_rows,
)
from tests.support.helpers import head_version, schema_versions
from tests.support.legacy import build_legacy, snapshot


@pytest.mark.parametrize("version", [1, 2])
def test_adoption_keeps_every_row_and_leaves_no_drift(
    empty_url: str, backend: str, version: int, samples_dir: Path
) -> None:
    build_legacy(empty_url, version, samples_dir)
    before = raw_rows(empty_url)
    state = migrations.status(empty_url)
    assert state.needs_adoption
    assert state.schema_version == version
    assert migrations.check(empty_url)  # a legacy database is a finding until adopted

    report = migrations.upgrade(empty_url)

    assert report.adopted
    assert report.to_revision == head_revision()
    compared = assert_rows_kept(before, typed_rows(empty_url))
    assert compared > 400  # the data set really was compared
    raw_json = {k: r["raw_json"] for k, r in typed_rows(empty_url)["runs"].items()}
    assert any(
        v["results"][0]["metrics"].get("broken") != v["results"][0]["metrics"].get("broken")
        for v in raw_json.values()
    ), "the NaN written by the earlier system reads back as NaN"
    assert migrations.check(empty_url) == []
    assert schema_versions(empty_url) == list(range(1, head_version() + 1))


def test_adopted_metrics_keep_their_foreign_key(empty_url: str, samples_dir: Path) -> None:
    """After adoption and the derivation step the metrics' foreign key refuses orphans
    and cascades deletes to derived and legacy rows alike."""
    build_legacy(empty_url, 1, samples_dir)
    migrations.upgrade(empty_url)
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            benchmark = connection.exec_driver_sql(
                "SELECT benchmark_id FROM metrics GROUP BY benchmark_id "
                "ORDER BY count(*) DESC, benchmark_id LIMIT 1"
            ).scalar_one()
            missing = connection.exec_driver_sql("SELECT max(id) + 1 FROM benchmarks").scalar_one()
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO metrics (benchmark_id, metric_name, metric_value) "
                f"VALUES ({missing}, 'orphan', 1.0)"
            )
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DELETE FROM benchmarks WHERE id = {benchmark}")
            left = connection.exec_driver_sql(
                f"SELECT count(*) FROM metrics WHERE benchmark_id = {benchmark}"
            ).scalar_one()
        assert left == 0
    finally:
        engine.dispose()


def test_adoption_keeps_sqlite_values_byte_for_byte(
    sqlite_databases: Any, samples_dir: Path
) -> None:
    # SQLite only: there adoption changes no column type, so stored values must
    # stay identical; PostgreSQL converts types and is compared through the
    # models' types above. Timestamps are the exception: they become the one
    # canonical text of the same instant (tests/migrations/test_legacy_timestamps.py).
    empty_url = sqlite_databases.empty()
    build_legacy(empty_url, 2, samples_dir)
    before = raw_rows(empty_url)
    migrations.upgrade(empty_url)
    after = raw_rows(empty_url)
    for table, rows in before.items():
        if table == "schema_version":
            continue
        times = [
            c.name for c in Base.metadata.tables[table].columns if isinstance(c.type, UTCDateTime)
        ]
        if table in ADDED_TO:  # derived rows are added; the legacy ones stay as they were
            assert set(rows) <= set(after[table]), table
        else:
            assert after[table].keys() == rows.keys(), table
        for key, row in rows.items():
            for name, value in row.items():
                stored = after[table][key][name]
                if name in times:
                    assert parse_timestamp(stored) == parse_timestamp(value), (table, key, name)
                    assert stored is None or is_canonical(stored), (table, key, name)
                elif table == "agents" and name == "token":
                    # KITT's schema 4 moves it to token_hash (compared there).
                    assert stored == expected_row(table, row)[name], (table, key, name)
                else:
                    assert stored == value, (table, key, name)


def test_adopted_sequences_never_reuse_ids(empty_url: str, samples_dir: Path) -> None:
    build_legacy(empty_url, 2, samples_dir)
    migrations.upgrade(empty_url)
    engine = make_engine(empty_url)
    events = Base.metadata.tables["events"]
    benchmarks = Base.metadata.tables["benchmarks"]
    with engine.begin() as connection:
        event_id = connection.execute(
            sa.insert(events).values(event_type="x.y").returning(events.c.id)
        ).scalar_one()
        highest = connection.execute(sa.select(sa.func.max(benchmarks.c.id))).scalar_one()
        bench_id = connection.execute(
            sa.insert(benchmarks).values(test_name="t").returning(benchmarks.c.id)
        ).scalar_one()
    engine.dispose()
    assert event_id == 10  # 6..9 were used once and deleted
    assert bench_id > highest


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("runs", "timestamp", "yesterday"),
        ("runs", "raw_json", "{not json"),
        ("metrics", "metric_value", "fast"),
    ],
)
def test_unconvertible_value_stops_adoption_and_changes_nothing(
    empty_url: str, samples_dir: Path, table: str, column: str, value: str
) -> None:
    if table == "metrics" and empty_url.startswith("postgresql"):
        # A REAL column holds text only on SQLite; on PostgreSQL the earlier
        # schema could not have stored it, so use a TEXT-typed column there.
        table, column = "benchmarks", "timestamp"
    build_legacy(empty_url, 1, samples_dir)
    engine = sa.create_engine(empty_url.replace("postgresql://", "postgresql+psycopg://", 1))
    pk = "id"
    with engine.begin() as connection:
        victim = connection.exec_driver_sql(f"SELECT max({pk}) FROM {table}").scalar_one()
        connection.execute(
            sa.text(f"UPDATE {table} SET {column} = :v WHERE {pk} = :k"), {"v": value, "k": victim}
        )
    engine.dispose()
    before = snapshot(empty_url)

    with pytest.raises(AdoptionError) as caught:
        migrations.upgrade(empty_url)

    message = str(caught.value)
    assert f"{table}.{column}" in message
    assert repr(victim) in message
    assert caught.value.table == table
    assert caught.value.column == column
    assert caught.value.row == victim
    assert snapshot(empty_url) == before


def test_column_unknown_to_the_reference_is_refused(empty_url: str, samples_dir: Path) -> None:
    build_legacy(empty_url, 1, samples_dir, extra=["ALTER TABLE runs ADD COLUMN gpu_temp REAL"])
    before = snapshot(empty_url)
    with pytest.raises(AdoptionError, match=r"runs\.gpu_temp"):
        migrations.upgrade(empty_url)
    assert snapshot(empty_url) == before


def test_adoption_through_the_alembic_command(
    empty_url: str, samples_dir: Path, run_alembic: Any
) -> None:
    build_legacy(empty_url, 1, samples_dir)
    result = run_alembic(empty_url, "upgrade", "head")
    assert result.returncode == 0, result.stderr
    # Alembic runs the revisions; the rows derived from the documents are
    # karr-db upgrade's own step, which the database waits for.
    assert [f.kind for f in migrations.check(empty_url)] == ["derivation"]
    assert schema_versions(empty_url) == list(range(1, head_version() + 1))
    migrations.upgrade(empty_url)
    assert migrations.check(empty_url) == []


# --- objects adoption does not own --------------------------------------------------


def _views(url: str) -> list[str]:
    engine = make_engine(url)
    with engine.connect() as connection:
        views = sorted(sa.inspect(connection).get_view_names())
    engine.dispose()
    return views


@pytest.mark.parametrize(
    ("planted", "kind", "name"),
    [
        # A name karr_db's later revisions create (the lost-stamp recovery would
        # otherwise drop it as karr_db's own).
        (
            ["CREATE TABLE events (stray integer)", "INSERT INTO events VALUES (1)"],
            "table",
            "events",
        ),
        (
            ["CREATE TABLE run_fingerprints (run_id text, note text)"],
            "table",
            "run_fingerprints",
        ),
        (["CREATE VIEW leaderboard_aggregates AS SELECT 1 AS x"], "view", "leaderboard_aggregates"),
        (
            ["CREATE VIEW karr_legacy_timezone AS SELECT 'UTC' AS zone"],
            "view",
            "karr_legacy_timezone",
        ),
    ],
)
def test_an_object_named_like_karr_db_s_but_not_its_own_is_refused(
    empty_url: str, samples_dir: Path, planted: list[str], kind: str, name: str
) -> None:
    build_legacy(empty_url, 1, samples_dir, extra=planted)
    before, views = snapshot(empty_url), _views(empty_url)

    with pytest.raises(AdoptionError, match=rf"{kind} {name}\b") as caught:
        migrations.upgrade(empty_url)

    assert caught.value.table == name
    assert snapshot(empty_url) == before
    assert _views(empty_url) == views
    assert migrations.status(empty_url).kind == "legacy"


def test_a_table_karr_db_made_keeps_being_rebuilt_after_a_lost_stamp(
    migrated_url: str,
) -> None:
    """The same names, with karr_db's own columns: the recovery still runs."""
    engine = make_engine(migrated_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE alembic_version")
        connection.exec_driver_sql("ALTER TABLE events ADD COLUMN note text")
    engine.dispose()
    before = snapshot(migrated_url)

    with pytest.raises(AdoptionError, match=r"events\.note"):
        migrations.upgrade(migrated_url)
    assert snapshot(migrated_url) == before


def test_tables_and_views_of_someone_else_are_kept_and_reported_by_check(
    empty_url: str, samples_dir: Path
) -> None:
    build_legacy(
        empty_url,
        1,
        samples_dir,
        extra=[
            "CREATE TABLE notes (n integer)",
            "INSERT INTO notes VALUES (7)",
            "CREATE VIEW recent_runs AS SELECT id FROM runs",
        ],
    )
    report = migrations.upgrade(empty_url)

    assert report.adopted
    assert snapshot(empty_url)["notes"]["rows"] == [(7,)]
    assert "recent_runs" in _views(empty_url)
    findings = [(f.kind, f.message) for f in migrations.check(empty_url)]
    assert ("foreign", "table notes is not karr_db's (no revision declares it)") in findings
    assert ("foreign", "view recent_runs is not karr_db's (no revision declares it)") in findings
    assert len(findings) == 2, findings


@pytest.mark.sqlite_only
def test_a_refused_adoption_leaves_the_journal_mode_it_found(
    empty_url: str, samples_dir: Path
) -> None:
    build_legacy(empty_url, 1, samples_dir, extra=["CREATE TABLE events (stray integer)"])
    path = empty_url.removeprefix("sqlite:///")
    import sqlite3

    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"

    with pytest.raises(AdoptionError):
        migrations.upgrade(empty_url)

    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_duplicate_key_stops_adoption_and_is_named(empty_url: str, samples_dir: Path) -> None:
    """A legacy table whose rows break a key the schema declares (here a hardware table
    that lost its primary key and holds one row twice) is refused, naming the key, the
    value and the table, and nothing changes."""
    if empty_url.startswith("sqlite"):
        unkeyed = [
            "ALTER TABLE hardware RENAME TO hardware_keyed",
            "CREATE TABLE hardware (id INTEGER, run_id TEXT NOT NULL REFERENCES runs(id) "
            "ON DELETE CASCADE, gpu_model TEXT, gpu_vram_gb INTEGER, gpu_count INTEGER "
            "DEFAULT 1, cpu_model TEXT, cpu_cores INTEGER, ram_gb INTEGER, environment_type "
            "TEXT DEFAULT 'native_linux', fingerprint TEXT)",
            "INSERT INTO hardware SELECT * FROM hardware_keyed",
            "DROP TABLE hardware_keyed",
        ]
    else:
        unkeyed = ["ALTER TABLE hardware DROP CONSTRAINT hardware_pkey"]
    twice = "INSERT INTO hardware SELECT * FROM hardware WHERE id = (SELECT min(id) FROM hardware)"
    build_legacy(empty_url, 1, samples_dir, extra=[*unkeyed, twice])
    before = snapshot(empty_url)

    with pytest.raises(
        AdoptionError, match=r"duplicate value \(\d+,\) violates pk_hardware"
    ) as caught:
        migrations.upgrade(empty_url)

    assert (caught.value.table, caught.value.column) == ("hardware", "id")
    assert snapshot(empty_url) == before
