"""Typos are caught: metric names, statuses, times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import pytest
import typer
from sqlalchemy import text

from karr_db.cli._options import parse_point_in_time
from karr_db.database import Database
from karr_db.repositories.campaigns import CampaignStatus
from karr_db.repositories.events import EventType
from karr_db.repositories.quick_tests import QuickTestStatus
from tests.support.cli import cli, import_samples, write_variants


def test_metric_names_are_listed_with_counts_per_test(migrated_url: str, samples_dir: Path) -> None:
    import_samples(migrated_url, samples_dir)
    with Database(migrated_url) as db, db.unit_of_work() as uow:
        names = uow.results.metric_names()
        overall = uow.results.metric_names(per_test=False)
        throughput = uow.results.metric_names(test_name="throughput")
    by_key = {(n.metric, n.test_name): n.count for n in names}
    assert by_key[("avg_tps", "throughput")] == 3  # three throughput benchmarks in the samples
    assert {n.metric for n in overall} == {n.metric for n in names}
    assert sum(n.count for n in overall) == sum(n.count for n in names)
    assert {n.test_name for n in throughput} == {"throughput"}

    result = cli("metrics", "--database", migrated_url, "--json")
    assert result.exit_code == 0, result.output
    assert {(m["metric"], m["test_name"], m["count"]) for m in result.json()} == {
        (n.metric, n.test_name, n.count) for n in names
    }
    human = cli("metrics", "--database", migrated_url, "--test", "throughput")
    assert human.exit_code == 0
    assert "avg_tps" in human.stdout
    assert "metric name(s) in test 'throughput'" in human.stdout


@pytest.mark.parametrize("command", ["leaderboard", "history"])
def test_an_unknown_metric_suggests_the_nearest_and_exits_2(
    migrated_url: str, samples_dir: Path, command: str
) -> None:
    import_samples(migrated_url, samples_dir)
    result = cli(command, "--database", migrated_url, "--metric", "avg_tsp")
    assert result.exit_code == 2
    assert "no metric 'avg_tsp' is stored; did you mean 'avg_tps'" in result.stderr
    far = cli(command, "--database", migrated_url, "--metric", "zzzzzz")
    assert far.exit_code == 2
    assert "karr-db metrics" in far.stderr
    # A stored metric that no run matches is an empty answer, not an error.
    empty = cli(command, "--database", migrated_url, "--metric", "avg_tps", "--engine", "none")
    assert empty.exit_code == 0
    assert "no values of 'avg_tps' match" in empty.stdout


def test_an_empty_database_says_no_metrics_are_stored(migrated_url: str) -> None:
    result = cli("leaderboard", "--database", migrated_url, "--metric", "avg_tps")
    assert result.exit_code == 2
    assert "no metrics are stored" in result.stderr


@pytest.mark.parametrize(
    ("command", "statuses", "typo", "meant"),
    [
        ("campaigns", CampaignStatus, "runing", "running"),
        ("quick-tests", QuickTestStatus, "queud", "queued"),
        ("agents", None, "onlin", "online"),
    ],
)
def test_an_unknown_status_is_a_usage_error_listing_the_statuses(
    migrated_url: str, command: str, statuses: type[StrEnum] | None, typo: str, meant: str
) -> None:
    result = cli(command, "--database", migrated_url, "--status", typo)
    assert result.exit_code == 2
    assert f"unknown status {typo!r}" in result.stderr
    assert f"did you mean {meant!r}" in result.stderr
    if statuses is not None:  # the valid set comes from the code's enum
        for status in statuses:
            assert status.value in result.stderr
        assert all(s.value in " ".join(cli(command, "--help").stdout.split()) for s in statuses)
    assert cli(command, "--database", migrated_url, "--status", meant).exit_code == 0


def test_a_status_only_an_older_database_wrote_is_still_accepted(migrated_url: str) -> None:
    with Database(migrated_url) as db, db.unit_of_work() as uow:
        uow.campaigns.create("legacy")
        uow.session.execute(text("UPDATE web_campaigns SET status = 'archived'"))
    result = cli("campaigns", "--database", migrated_url, "--status", "archived", "--json")
    assert result.exit_code == 0, result.output
    assert [c["status"] for c in result.json()] == ["archived"]


def test_relative_times_mean_what_the_help_says() -> None:
    now = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
    assert parse_point_in_time("7d", now=now) == now - timedelta(days=7)
    assert parse_point_in_time("12h", now=now) == now - timedelta(hours=12)
    assert parse_point_in_time("2w", now=now) == now - timedelta(weeks=2)
    assert parse_point_in_time("yesterday", now=now) == datetime(2026, 3, 9, tzinfo=UTC)
    assert parse_point_in_time("today", now=now) == datetime(2026, 3, 10, tzinfo=UTC)
    assert parse_point_in_time("2026-01-31", now=now) == datetime(2026, 1, 31, tzinfo=UTC)
    assert parse_point_in_time("2026-01-31T08:00:00+02:00") == datetime(2026, 1, 31, 6, tzinfo=UTC)
    assert parse_point_in_time("2026-01-31T08:00:00") == datetime(2026, 1, 31, 8, tzinfo=UTC)
    for bad in ("soon", "7x", "", "2026-13-01", "99999999999999d"):
        with pytest.raises(typer.BadParameter) as caught:
            parse_point_in_time(bad)
        assert "is not a point in time; use e.g. 7d" in caught.value.message


def test_since_and_until_take_relative_times_on_the_command_line(
    migrated_url: str, samples_dir: Path, tmp_path: Path
) -> None:
    write_variants(samples_dir, tmp_path / "docs", 4)  # 2026-01-01 12:00 .. 15:00
    assert cli("import", "--database", migrated_url, str(tmp_path / "docs")).exit_code == 0
    day = cli(
        "list", "-d", migrated_url, "--json", "--since", "2026-01-01", "--until", "2026-01-02"
    )
    assert day.json()["total"] == 4
    later = cli("list", "-d", migrated_url, "--json", "--since", "2026-01-01T14:00:00")
    assert later.json()["total"] == 2
    recent = cli("list", "-d", migrated_url, "--json", "--since", "7d")
    assert recent.exit_code == 0
    assert recent.json()["total"] == 0  # the documents are from January 2026
    assert "yesterday" in cli("list", "--help").stdout


@pytest.mark.parametrize("command", ["list", "stats", "export", "history", "leaderboard"])
def test_a_bad_time_is_a_usage_error_in_the_layers_words(command: str) -> None:
    extra = ["--metric", "avg_tps"] if command in ("history", "leaderboard") else []
    extra += ["-o", "out.csv", "--format", "csv"] if command == "export" else []
    result = cli(command, *extra, "--since", "last tuesday")
    assert result.exit_code == 2
    assert "'last tuesday' is not a point in time; use e.g. 7d" in result.stderr
    assert "Traceback" not in result.output


def test_an_unknown_event_type_is_a_usage_error_naming_the_enum(migrated_url: str) -> None:
    result = cli("events", "--database", migrated_url, "--type", "run.savd")
    assert result.exit_code == 2
    assert "unknown event type 'run.savd'" in result.stderr
    assert "did you mean 'run.saved'" in result.stderr
    assert all(t.value in result.stderr for t in EventType)
    assert cli("events", "--database", migrated_url, "--type", "run.saved").exit_code == 0


def test_an_event_type_another_writer_stored_is_accepted(migrated_url: str) -> None:
    with Database(migrated_url) as db, db.unit_of_work() as uow:
        uow.events.append("dashboard.login", source_id="u1")
    result = cli("events", "--database", migrated_url, "--type", "dashboard.login", "--json")
    assert result.exit_code == 0, result.output
    assert [e["event_type"] for e in result.json()] == ["dashboard.login"]
