"""Time is time, whoever wrote it: queries on adopted data answer by the instants.

The earlier system wrote local ``T``-separated times (here in New York, across
its clock change), SQLite's UTC ``datetime('now')`` text and ``''`` into the
same columns. Every query that orders, pages, filters or ages by time must give
the answer the instants give, after adoption and after the earlier system's
code (still running during a switch-over) writes more rows with the plain
driver, on both dialects.

Longer than ~400 lines on purpose: one case per query that reads time, each on
the same adopted fixture.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from karr_db import migrations
from karr_db.database import Database
from karr_db.derive import rederive
from tests.support.legacy import (
    HISTORY_ZONE,
    History,
    Stamp,
    build_legacy,
    build_legacy_history,
    history,
    snapshot,
    write_history,
)

SCENARIOS = ["adopted", "written-after"]


@pytest.fixture(params=SCENARIOS)
def scenario(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def legacy(
    empty_url: str, samples_dir: Path, scenario: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, History]:
    """An adopted database of the history; in "written-after", the earlier system's
    code wrote the later 40% of it after adoption."""
    monkeypatch.setenv("KARR_LEGACY_TIMEZONE", HISTORY_ZONE)
    made = history(samples_dir)
    before, after = made.split(0.6) if scenario == "written-after" else (made.rows, [])
    build_legacy_history(empty_url, made, before)
    migrations.upgrade(empty_url)
    if after:
        write_history(empty_url, made, after)
    return empty_url, made


def _newest_first(expected: dict[Any, datetime | None]) -> list[Any]:
    """Keys by (instant, key) descending, unknown instants last (by key descending)."""
    known = sorted(
        ((t, k) for k, t in expected.items() if t is not None),
        key=lambda item: (item[0], item[1]),
        reverse=True,
    )
    unknown = sorted((k for k, t in expected.items() if t is None), reverse=True)
    return [k for _, k in known] + unknown


def _oldest_first(expected: dict[Any, datetime | None]) -> list[Any]:
    known = sorted((t, k) for k, t in expected.items() if t is not None)
    return [k for _, k in known] + sorted(k for k, t in expected.items() if t is None)


@pytest.mark.parametrize("limit", [3, 20])
def test_keyset_paging_returns_every_run_in_the_order_of_the_instants(
    legacy: tuple[str, History], limit: int
) -> None:
    url, made = legacy
    seen: list[str] = []
    with Database(url) as db, db.unit_of_work() as uow:
        cursor = None
        while True:
            page = uow.results.list(limit=limit, cursor=cursor)
            seen += [run.id for run in page.items]
            cursor = page.next_cursor
            if cursor is None or len(seen) > 100:  # a broken cursor may never end
                break
    assert seen == _newest_first(made.expected("runs", "timestamp"))


def test_since_and_until_count_by_the_instants(legacy: tuple[str, History]) -> None:
    url, made = legacy
    instants = sorted(t for t in made.expected("runs", "timestamp").values() if t is not None)
    median = instants[len(instants) // 2]
    with Database(url) as db, db.unit_of_work() as uow:
        since = uow.results.count({"since": median})
        until = uow.results.count({"until": median})
        window = uow.results.list(
            {"since": instants[5], "until": instants[9]}, order_by="timestamp", descending=False
        )
    assert since == sum(1 for t in instants if t >= median)
    assert until == sum(1 for t in instants if t < median)
    expected = {k: t for k, t in made.expected("runs", "timestamp").items()}
    assert [r.id for r in window.items] == [
        k
        for k in _oldest_first(expected)
        if (at := expected[k]) is not None and instants[5] <= at < instants[9]
    ]


def test_a_run_saved_afterwards_is_the_newest(
    legacy: tuple[str, History], samples_dir: Path
) -> None:
    url, made = legacy
    newest = max(t for t in made.expected("runs", "timestamp").values() if t is not None)
    doc = json.loads(sorted(samples_dir.glob("*.json"))[0].read_text(encoding="utf-8"))
    doc["timestamp"] = (newest + timedelta(minutes=1)).isoformat()
    doc["note"] = "saved through karr_db after adoption"
    with Database(url) as db:
        with db.unit_of_work() as uow:
            saved = uow.results.save(doc)
        with db.unit_of_work() as uow:
            first = uow.results.list(limit=1).items[0]
            total = uow.results.count()
    assert first.id == saved.run.id
    assert total == len(made.expected("runs", "timestamp")) + 1


def _last_heartbeat(made: History) -> datetime:
    beats = [t for t in made.expected("agents", "last_heartbeat").values() if t is not None]
    return max(beats)


def test_stale_agents_are_found_and_marked_offline(legacy: tuple[str, History]) -> None:
    url, made = legacy
    now = _last_heartbeat(made) + timedelta(hours=2)
    beats = made.expected("agents", "last_heartbeat")
    names = {row["id"]: row["name"] for table, row in made.rows if table == "agents"}

    def stale(threshold: timedelta) -> list[str]:
        return sorted(names[k] for k, t in beats.items() if t is None or t < now - threshold)

    with Database(url) as db:
        with db.unit_of_work() as uow:
            within_hour = [
                a.name for a in uow.agents.list(stale_after=timedelta(hours=1), now=now).items
            ]
            within_3h = [
                a.name for a in uow.agents.list(stale_after=timedelta(hours=3), now=now).items
            ]
        with db.unit_of_work() as uow:
            marked = uow.agents.mark_stale_offline(timedelta(hours=3), now=now)
        with db.unit_of_work() as uow:
            offline = sorted((a.name for a in uow.agents.list(status="offline").items), key=str)
    assert within_hour == stale(timedelta(hours=1)) == sorted(names.values())
    assert within_3h == stale(timedelta(hours=3)) == ["dgx-02"]
    assert sorted((a.name for a in marked), key=str) == offline == ["dgx-02"]


def test_metric_history_is_in_the_order_of_the_instants(legacy: tuple[str, History]) -> None:
    url, made = legacy
    points: list[Any] = []
    with Database(url) as db, db.unit_of_work() as uow:
        cursor = None
        while True:  # pages of 7 points: the keyset cursor is on the run's time too
            page = uow.results.metric_history("history_index", limit=7, cursor=cursor)
            points += page.items
            cursor = page.next_cursor
            if cursor is None or len(points) > 500:
                break
    order: list[str] = []
    for point in points:
        if not order or order[-1] != point.run_id:
            order.append(point.run_id)
    assert order == _oldest_first(made.expected("runs", "timestamp"))


@pytest.mark.parametrize("limit", [1, 4])
def test_campaign_and_quick_test_lists_are_newest_first(
    legacy: tuple[str, History], limit: int
) -> None:
    url, made = legacy
    listed: dict[str, list[str]] = {"web_campaigns": [], "quick_tests": []}
    with Database(url) as db, db.unit_of_work() as uow:
        for table, repository in (
            ("web_campaigns", uow.campaigns),
            ("quick_tests", uow.quick_tests),
        ):
            cursor = None
            while True:
                page = repository.list(limit=limit, cursor=cursor)
                listed[table] += [item.id for item in page.items]
                cursor = page.next_cursor
                if cursor is None or len(listed[table]) > 100:  # a broken cursor may never end
                    break
    for table, ids in listed.items():
        assert ids == _newest_first(made.expected(table, "created_at")), table


def test_quick_tests_are_claimed_and_found_stale_by_the_instants(
    legacy: tuple[str, History],
) -> None:
    url, made = legacy
    rows = [row for table, row in made.rows if table == "quick_tests"]
    queued = {r["id"]: r["created_at"].expected for r in rows if r["status"] == "queued"}
    started = {r["id"]: r["started_at"].expected for r in rows if r["status"] == "running"}
    middle = sorted(t for t in started.values() if t is not None)[1]
    with Database(url) as db:
        with db.unit_of_work() as uow:
            stale = [t.id for t in uow.quick_tests.find_stale(timedelta(hours=1), now=middle)]
        with db.unit_of_work() as uow:
            claimed = uow.quick_tests.claim_next("agent-1")
    before = middle - timedelta(hours=1)
    assert stale == [k for k in _oldest_first(started) if (started[k] or before) < before]
    assert claimed is not None
    assert claimed.id == _oldest_first(queued)[0]


def test_events_are_read_by_the_instants(legacy: tuple[str, History]) -> None:
    url, made = legacy
    created = made.expected("events", "created_at")
    instants = sorted(t for t in created.values() if t is not None)
    since, until = instants[2], instants[7]
    with Database(url) as db, db.unit_of_work() as uow:
        page = uow.events.list(since=since, until=until)
    assert [e.id for e in page.items] == sorted(
        k for k, t in created.items() if t is not None and since <= t < until
    )
    assert {e.id: e.created_at for e in page.items} == {e.id: created[e.id] for e in page.items}


def test_check_is_clean_and_every_value_reads_as_its_instant(
    legacy: tuple[str, History], scenario: str
) -> None:
    url, made = legacy
    findings = migrations.check(url)
    if scenario == "written-after":
        # Rows the earlier system's code wrote are not in the aggregate until rederive.
        assert [f.message.split(":")[0] for f in findings] == ["leaderboard_aggregates"]
        rederive(url)
        findings = migrations.check(url)
    assert findings == []
    with Database(url) as db, db.unit_of_work() as uow:
        runs = {r.id: r for r in uow.results.list(limit=100).items}
        agents = {a.id: a for a in uow.agents.list().items}
    assert {k: r.timestamp for k, r in runs.items()} == made.expected("runs", "timestamp")
    assert {k: a.last_heartbeat for k, a in agents.items()} == made.expected(
        "agents", "last_heartbeat"
    )
    assert {k: a.registered_at for k, a in agents.items()} == made.expected(
        "agents", "registered_at"
    )


# --- the setting ------------------------------------------------------------------


def _local_stamps(rows: list[tuple[str, dict[str, Any]]]) -> int:
    return sum(
        1
        for _, row in rows
        for value in row.values()
        if isinstance(value, Stamp) and value.form == "local"
    )


def test_adoption_reports_the_zone_and_how_many_values_it_read_in_it(
    empty_url: str, samples_dir: Path
) -> None:
    made = history(samples_dir, zone="Asia/Kolkata")
    build_legacy_history(empty_url, made)

    report = migrations.upgrade(empty_url, legacy_timezone="Asia/Kolkata")

    assert report.adopted
    assert report.legacy_timezone == "Asia/Kolkata"
    assert report.timestamps_interpreted == _local_stamps(made.rows)
    assert report.timestamps_rewritten["runs.timestamp"] > 0
    with Database(empty_url) as db, db.unit_of_work() as uow:
        runs = {r.id: r.timestamp for r in uow.results.list(limit=100).items}
    assert runs == made.expected("runs", "timestamp")


def test_the_default_zone_is_utc(
    empty_url: str, samples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KARR_LEGACY_TIMEZONE", raising=False)
    made = history(samples_dir)
    build_legacy_history(empty_url, made)

    report = migrations.upgrade(empty_url)

    assert report.legacy_timezone == "UTC"
    runs = [row for table, row in made.rows if table == "runs"]
    with Database(empty_url) as db, db.unit_of_work() as uow:
        got = {r.id: r.timestamp for r in uow.results.list(limit=100).items}
    for row in runs:
        stamp: Stamp = row["timestamp"]
        if stamp.form == "local":
            # New York's wall clock, read as UTC: what the setting said.
            wall = stamp.instant.astimezone(made.zone).replace(tzinfo=UTC)  # type: ignore[union-attr]
            assert got[row["id"]] == wall
        else:
            assert got[row["id"]] == stamp.expected  # offsets and unknowns: unaffected


def test_offsets_and_sqlite_defaults_are_never_shifted(empty_url: str, samples_dir: Path) -> None:
    made = history(samples_dir)
    build_legacy_history(empty_url, made)
    with Database(empty_url) as db:
        report = db.upgrade(legacy_timezone="Asia/Kolkata")  # not the zone they were in
    assert report.legacy_timezone == "Asia/Kolkata"
    with Database(empty_url) as db, db.unit_of_work() as uow:
        runs = {r.id: r for r in uow.results.list(limit=100).items}
        events = {e.id: e.created_at for e in uow.events.list().items}
    for table, row in made.rows:
        if table == "runs" and row["timestamp"].form == "offset":
            assert runs[row["id"]].timestamp == row["timestamp"].expected
        if table == "runs":
            assert runs[row["id"]].created_at == row["created_at"].expected
        if table == "events" and row["created_at"].form == "utc":
            assert events[row["id"]] == row["created_at"].expected


def test_a_bad_zone_is_a_validation_error_naming_the_option(
    empty_url: str, samples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from karr_db.errors import ValidationError

    made = history(samples_dir)
    build_legacy_history(empty_url, made)
    before = snapshot(empty_url)
    with pytest.raises(ValidationError) as caught:
        migrations.upgrade(empty_url, legacy_timezone="Mars/Olympus_Mons")
    assert caught.value.fields == ["legacy_timezone"]
    assert "Mars/Olympus_Mons" in str(caught.value)
    monkeypatch.setenv("KARR_LEGACY_TIMEZONE", "not a zone")
    with pytest.raises(ValidationError, match="KARR_LEGACY_TIMEZONE"):
        migrations.upgrade(empty_url)
    assert snapshot(empty_url) == before


# --- check and repair ---------------------------------------------------------------


def _raw_execute(url: str, statements: list[tuple[str, dict[str, Any]]]) -> None:
    import sqlite3

    import psycopg

    if url.startswith("postgresql"):
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
            for sql, params in statements:
                connection.execute(sql.replace(":v", "%(v)s").replace(":k", "%(k)s"), params)
        return
    lite = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        with lite:
            for sql, params in statements:
                lite.execute(sql, params)
    finally:
        lite.close()


def test_check_counts_other_forms_per_column_and_repair_rewrites_them(
    empty_url: str, samples_dir: Path
) -> None:
    made = history(samples_dir)
    build_legacy_history(empty_url, made)
    migrations.upgrade(empty_url, legacy_timezone=HISTORY_ZONE)
    # Forms the triggers leave alone (a compact offset, padding), and text that
    # is no time at all.
    odd = "2026-03-07T10:00:00+0530"
    _raw_execute(
        empty_url,
        [
            ("UPDATE agents SET last_heartbeat = :v WHERE id = :k", {"v": odd, "k": "agent-0"}),
            (
                "UPDATE agents SET last_heartbeat = :v WHERE id = :k",
                {"v": " 2026-03-07T10:00:00", "k": "agent-1"},
            ),
            ("UPDATE agents SET last_heartbeat = :v WHERE id = :k", {"v": "soon", "k": "agent-2"}),
        ],
    )
    findings = [f for f in migrations.check(empty_url) if f.kind == "timestamps"]
    assert [f.message.split(":")[0] for f in findings] == ["agents.last_heartbeat"]
    assert "3 value(s)" in findings[0].message

    repair = migrations.repair_timestamps(empty_url)

    assert repair.legacy_timezone == HISTORY_ZONE
    assert repair.rewritten == {"agents.last_heartbeat": 2}
    assert repair.interpreted == 1
    assert repair.unreadable == {"agents.last_heartbeat": 1}
    with Database(empty_url) as db, db.unit_of_work() as uow:
        beats = {k: uow.agents.get(k).last_heartbeat for k in ("agent-0", "agent-1")}
    assert beats == {
        "agent-0": datetime(2026, 3, 7, 4, 30, tzinfo=UTC),
        "agent-1": datetime(2026, 3, 7, 15, 0, tzinfo=UTC),  # 10:00 EST
    }
    findings = [f for f in migrations.check(empty_url) if f.kind == "timestamps"]
    assert [f.message for f in findings] == [
        "agents.last_heartbeat: 1 value(s) not in the canonical form "
        "'YYYY-MM-DD HH:MM:SS.ffffff+00:00'; run `karr-db repair-timestamps`"
    ]


def test_the_database_rule_agrees_with_zoneinfo_around_clock_changes(migrated_url: str) -> None:
    from karr_db.migrations.timestamps import canonical

    values: list[str] = []
    for zone in ("America/New_York", "Asia/Kolkata"):
        migrations.repair_timestamps(migrated_url, legacy_timezone=zone)
        tz = ZoneInfo(zone)
        values = []
        for base in ("2026-03-08T00:00:00", "2026-11-01T00:00:00", "2025-07-01T12:00:00"):
            start = datetime.fromisoformat(base)
            for minutes in range(0, 4 * 60, 17):
                local = start + timedelta(minutes=minutes, microseconds=minutes * 1013)
                values.append(local.isoformat())
                values.append(local.replace(microsecond=0).isoformat())
        values += [
            "2026-03-08 02:30:00",
            "2026-03-08 02:30:00.25",
            "2026-03-08T02:30:00Z",
            "2026-03-08T02:30:00.5+05:30",
            "2026-11-01T01:30:00-04:00",
            "",
            "   ",
            "2026-02-30T10:00:00",
            "2026-03-08T24:00:00",
            "yesterday",
        ]
        statements = [
            (
                "INSERT INTO agents (id, name, last_heartbeat) VALUES (:k, :k, :v)",
                {"k": f"{zone}-{n}", "v": v},
            )
            for n, v in enumerate(values)
        ]
        _raw_execute(migrated_url, statements)
        with Database(migrated_url) as db, db.engine.connect() as connection:
            stored: dict[str, Any] = dict(
                connection.exec_driver_sql(
                    "SELECT id, last_heartbeat FROM agents WHERE id LIKE %s"
                    if migrated_url.startswith("postgresql")
                    else "SELECT id, last_heartbeat FROM agents WHERE id LIKE ?",
                    (f"{zone}-%",),
                ).all()
            )
        for n, value in enumerate(values):
            try:
                want: str | None = canonical(value, tz)[0]
            except ValueError:
                want = value
            assert stored[f"{zone}-{n}"] == want, (zone, value)


# --- the command line -----------------------------------------------------------------


def test_cli_upgrade_takes_the_zone_and_says_what_it_did(empty_url: str, samples_dir: Path) -> None:
    from tests.support.cli import cli

    made = history(samples_dir, zone="Europe/Berlin")
    build_legacy_history(empty_url, made)

    bad = cli("upgrade", "--database", empty_url, "--legacy-timezone", "Europe/Atlantis")
    assert bad.exit_code == 1
    assert "legacy_timezone" in bad.output
    outcome = cli("upgrade", "--database", empty_url, "--legacy-timezone", "Europe/Berlin")

    assert outcome.exit_code == 0, outcome.output
    assert f"read {_local_stamps(made.rows):,} naive local time(s) in Europe/Berlin" in (
        outcome.stdout
    )
    assert cli("check", "--database", empty_url).exit_code == 0


def test_cli_repair_timestamps(migrated_url: str) -> None:
    from tests.support.cli import cli

    _raw_execute(
        migrated_url,
        [
            (
                "INSERT INTO agents (id, name, last_heartbeat) VALUES (:k, :k, :v)",
                {"k": "a", "v": "2026-03-07T10:00:00+0100"},
            )
        ],
    )
    assert cli("check", "--database", migrated_url).exit_code == 1

    outcome = cli("repair-timestamps", "--database", migrated_url, "--json")

    assert outcome.exit_code == 0, outcome.output
    assert outcome.json()["rewritten"] == {"agents.last_heartbeat": 1}
    assert cli("check", "--database", migrated_url).exit_code == 0


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe"])
def test_the_zone_table_gives_the_rules_offset_for_every_local_time(zone: str) -> None:
    import bisect
    import random

    from karr_db.migrations.timestamps import local_instant, zone_periods

    tz = ZoneInfo(zone)
    periods = zone_periods(tz)
    starts = [start for start, _ in periods]
    rng = random.Random(zone)
    # Random local times, and times within two hours of each clock change
    # (skipped and repeated hours included).
    samples = [
        datetime(1990, 1, 1) + timedelta(seconds=rng.randrange(60 * 366 * 86400))
        for _ in range(2000)
    ]
    for start, _ in periods[1:]:
        edge = datetime.fromisoformat(start)
        samples += [edge + timedelta(seconds=s) for s in (-7200, -3601, -1, 0, 1, 1800, 3600)]
    for local in samples:
        want = local_instant(local, tz).utcoffset()
        assert want is not None
        got = periods[bisect.bisect_right(starts, local.strftime("%Y-%m-%d %H:%M:%S")) - 1][1]
        assert got == int(want.total_seconds()), local


def test_check_notices_a_missing_zone_table_and_repair_restores_it(migrated_url: str) -> None:
    from karr_db.migrations.timestamps import ZONE_TABLE

    _raw_execute(migrated_url, [(f"DROP TABLE {ZONE_TABLE}", {})])
    messages = [f.message for f in migrations.check(migrated_url)]
    assert any(ZONE_TABLE in m for m in messages), messages

    migrations.repair_timestamps(migrated_url, legacy_timezone="Asia/Kolkata")

    assert migrations.check(migrated_url) == []
    _raw_execute(
        migrated_url,
        [
            (
                "INSERT INTO agents (id, name, last_heartbeat) VALUES (:k, :k, :v)",
                {"k": "a", "v": "2026-03-07T10:00:00"},
            )
        ],
    )
    with Database(migrated_url) as db, db.unit_of_work() as uow:
        assert uow.agents.get("a").last_heartbeat == datetime(2026, 3, 7, 4, 30, tzinfo=UTC)


EDGE_OF_TIME = "9999-12-31T23:30:00-01:00"  # 10000-01-01 00:30 in UTC


def test_repair_counts_a_time_beyond_year_9999_as_unreadable(migrated_url: str) -> None:
    with Database(migrated_url) as db, db.unit_of_work() as uow:
        agent = uow.agents.register("edge").agent.id
    # Stored before revision 0013, whose triggers now refuse it.
    sqlite = migrated_url.startswith("sqlite")
    _raw_execute(
        migrated_url,
        [
            (
                "DROP TRIGGER karr_agents_canonical_time_update"
                if sqlite
                else "ALTER TABLE agents DISABLE TRIGGER karr_agents_canonical_time",
                {},
            ),
            (
                "UPDATE agents SET last_heartbeat = :v WHERE id = :k",
                {"v": EDGE_OF_TIME, "k": agent},
            ),
        ],
    )

    repair = migrations.repair_timestamps(migrated_url)

    assert repair.unreadable == {"agents.last_heartbeat": 1}
    assert repair.rewritten == {}


@pytest.mark.parametrize(
    "column",
    # The earlier system's PostgreSQL created_at is TIMESTAMP: it cannot hold the offset.
    ["timestamp", pytest.param("created_at", marks=pytest.mark.sqlite_only)],
)
def test_adoption_refuses_a_time_beyond_year_9999_naming_its_row(
    empty_url: str, samples_dir: Path, column: str
) -> None:
    from karr_db.errors import AdoptionError

    build_legacy(empty_url, 1, samples_dir)
    _raw_execute(
        empty_url,
        [
            (
                f"UPDATE runs SET {column} = :v WHERE id = (SELECT min(id) FROM runs)",
                {"v": EDGE_OF_TIME},
            )
        ],
    )
    with pytest.raises(AdoptionError, match=rf"runs\.{column}.*years 1-9999"):
        migrations.upgrade(empty_url)
    assert migrations.status(empty_url).kind == "legacy"


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("runs", "timestamp", "0001-01-01T00:00:00+01:00"),
        ("runs", "created_at", EDGE_OF_TIME),
        ("events", "created_at", "0001-01-01T00:30:00+01:00"),
        ("agents", "last_heartbeat", "0001-01-01T00:00:00+01:00"),
        ("agents", "last_heartbeat", EDGE_OF_TIME),
    ],
)
def test_a_writer_outside_the_layer_cannot_store_a_time_no_reader_can_read(
    migrated_url: str, table: str, column: str, value: str
) -> None:
    import sqlite3

    import psycopg

    rows = {
        "runs": ("INSERT INTO runs (id, model, engine, {c}) VALUES ('r', 'm', 'e', :v)"),
        "events": "INSERT INTO events (event_type, {c}) VALUES ('t', :v)",
        "agents": "INSERT INTO agents (id, name, {c}) VALUES ('a', 'a', :v)",
    }
    sql = rows[table].format(c=column)
    with pytest.raises((sqlite3.Error, psycopg.Error), match="years 1-9999"):
        _raw_execute(migrated_url, [(sql, {"v": value})])
    # The first instant of year 1 is still a time.
    _raw_execute(migrated_url, [(sql, {"v": "0001-01-01T00:00:00+00:00"})])
    with Database(migrated_url) as db, db.unit_of_work(readonly=True) as uow:
        if table == "events":
            assert uow.events.list(0).items[0].created_at == datetime(1, 1, 1, tzinfo=UTC)


# --- local times at a clock change ----------------------------------------------------

#: Europe/Berlin, 2026: 02:00-03:00 on 29 March is skipped (CET -> CEST) and
#: 02:00-03:00 on 25 October is repeated (CEST -> CET). PostgreSQL itself reads
#: both as CET (+01:00), the later of the two candidate instants, and so must
#: every other path.
CLOCK_CHANGES = [
    pytest.param("2026-10-25T02:30:00", datetime(2026, 10, 25, 1, 30, tzinfo=UTC), id="repeated"),
    pytest.param(
        "2026-03-29T02:30:00.25", datetime(2026, 3, 29, 1, 30, 0, 250000, tzinfo=UTC), id="skipped"
    ),
]


@pytest.mark.parametrize(("text", "instant"), CLOCK_CHANGES)
@pytest.mark.parametrize("path", ["adopted", "written-after"])
def test_a_local_time_at_a_clock_change_is_the_instant_postgresql_reads(
    empty_url: str, samples_dir: Path, path: str, text: str, instant: datetime
) -> None:
    # Into a TEXT column of the legacy database and adopted, or written by the
    # earlier system's code afterwards with the plain driver (into TIMESTAMPTZ
    # on PostgreSQL, which parses it in the database's default TimeZone) and
    # into agents.last_heartbeat (TEXT on both, rewritten by a trigger).
    build_legacy(empty_url, 2, samples_dir)
    first_run = "(SELECT min(id) FROM runs)"
    writes = [
        (f"UPDATE runs SET timestamp = :v WHERE id = {first_run}", {"v": text}),
        ("UPDATE agents SET last_heartbeat = :v WHERE id = :k", {"v": text, "k": "agent-1"}),
    ]
    if path == "adopted":
        _raw_execute(empty_url, writes)
    migrations.upgrade(empty_url, legacy_timezone="Europe/Berlin")
    if path == "written-after":
        _raw_execute(empty_url, writes)
        _raw_execute(
            empty_url,
            [
                (
                    "INSERT INTO runs (id, model, engine, timestamp) VALUES (:k, 'm', 'e', :v)",
                    {"k": "later", "v": text},
                ),
                (
                    "INSERT INTO agents (id, name, last_heartbeat) VALUES (:k, :k, :v)",
                    {"k": "later", "v": text},
                ),
            ],
        )

    with Database(empty_url) as db, db.unit_of_work(readonly=True) as uow:
        runs = {r.id: r.timestamp for r in uow.results.list(limit=100).items}
        first = min(runs)
        got = {
            "runs.timestamp": runs[first],
            "agents.last_heartbeat": uow.agents.get("agent-1").last_heartbeat,
        }
        if path == "written-after":
            got["inserted runs.timestamp"] = runs["later"]
            got["inserted agents.last_heartbeat"] = uow.agents.get("later").last_heartbeat
    assert got == dict.fromkeys(got, instant)
    assert [f for f in migrations.check(empty_url) if f.kind == "timestamps"] == []


@pytest.mark.postgres_only
@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe"])
def test_the_rule_reads_local_times_as_postgresql_does(migrated_url: str, zone: str) -> None:
    import psycopg

    from karr_db.migrations.timestamps import canonical, zone_periods

    # Every quarter hour within two hours of each clock change of 2020-2030.
    values = [
        (datetime.fromisoformat(start) + timedelta(minutes=m)).isoformat()
        for start, _ in zone_periods(ZoneInfo(zone))
        if "2020" <= start < "2031"
        for m in range(-120, 121, 15)
    ]
    assert len(values) > 100
    with psycopg.connect(migrated_url.replace("postgresql+psycopg://", "postgresql://")) as pg:
        pg.execute("SELECT set_config('TimeZone', %s, false)", (zone,))
        parsed = pg.execute(
            "SELECT to_char(v::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
            " || '.000000+00:00' FROM unnest(%s::text[]) WITH ORDINALITY AS t(v, n) ORDER BY n",
            (values,),
        ).fetchall()
    assert [row[0] for row in parsed] == [canonical(v, ZoneInfo(zone))[0] for v in values]
