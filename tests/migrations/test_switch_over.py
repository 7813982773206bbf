"""A safe switch-over from the earlier system: a hint instead of an empty file
beside the user's history, and a backup copy before a SQLite file is adopted."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from karr_db import migrations
from tests.support.cli import cli_process
from tests.support.legacy import build_legacy


@pytest.fixture
def kitt_home(tmp_path: Path, samples_dir: Path) -> Path:
    """A KARR_HOME holding only the earlier system's default database."""
    home = tmp_path / "kitt-home"
    home.mkdir()
    build_legacy(f"sqlite:///{home / 'kitt.db'}", 2, samples_dir)
    return home


def _rows(path: Path, table: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(path)
    try:
        return sorted(connection.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
    finally:
        connection.close()


@pytest.mark.parametrize("command", [("upgrade",), ("list",), ("status",)])
def test_the_earlier_default_file_is_pointed_out_not_shadowed(
    kitt_home: Path, command: tuple[str, ...]
) -> None:
    result = cli_process(*command, env={"KARR_HOME": str(kitt_home)})
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert f"{kitt_home / 'karr.db'} does not exist" in line
    assert f"the earlier system's database {kitt_home / 'kitt.db'} does" in line
    assert f"karr-db upgrade --database sqlite:///{kitt_home / 'kitt.db'}" in line
    assert sorted(p.name for p in kitt_home.iterdir()) == ["kitt.db"]


def test_an_explicit_database_is_a_choice(kitt_home: Path) -> None:
    fresh = kitt_home / "karr.db"
    result = cli_process("upgrade", "-d", f"sqlite:///{fresh}", env={"KARR_HOME": str(kitt_home)})
    assert result.returncode == 0, result.stderr
    assert f"created a new database at {fresh}" in result.stdout
    assert cli_process("list", env={"KARR_HOME": str(kitt_home)}).returncode == 0


def test_adopting_a_sqlite_file_writes_a_backup_first(kitt_home: Path) -> None:
    kitt = kitt_home / "kitt.db"
    runs_before = _rows(kitt, "runs")

    result = cli_process("upgrade", "--database", f"sqlite:///{kitt}", "--json")

    assert result.returncode == 0, result.stderr
    report = json_of(result.stdout)
    assert report["adopted"] is True
    backup = Path(report["backup"])
    assert backup.parent == kitt_home
    assert backup.name.startswith("kitt.backup-")
    assert backup.suffix == ".db"
    # The copy is the database as it was: the earlier system's, every row.
    assert migrations.status(f"sqlite:///{backup}").kind is migrations.DatabaseKind.LEGACY
    assert _rows(backup, "runs") == runs_before
    assert migrations.status(f"sqlite:///{kitt}").kind is migrations.DatabaseKind.MANAGED


def test_the_human_report_names_the_backup(kitt_home: Path) -> None:
    kitt = kitt_home / "kitt.db"
    result = cli_process("upgrade", "--database", f"sqlite:///{kitt}")
    assert result.returncode == 0, result.stderr
    (backup,) = kitt_home.glob("kitt.backup-*.db")
    assert f"backup of the database before adoption: {backup}" in result.stdout


def test_no_backup_writes_none(kitt_home: Path) -> None:
    kitt = kitt_home / "kitt.db"
    result = cli_process("upgrade", "--no-backup", "--database", f"sqlite:///{kitt}", "--json")
    assert result.returncode == 0, result.stderr
    assert json_of(result.stdout)["backup"] is None
    assert sorted(p.name for p in kitt_home.iterdir() if ".backup-" in p.name) == []


def test_no_backup_when_nothing_is_adopted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'karr.db'}"
    assert cli_process("upgrade", "-d", url).returncode == 0
    again = cli_process("upgrade", "-d", url, "--json")
    assert json_of(again.stdout)["backup"] is None
    assert [p.name for p in tmp_path.iterdir() if ".backup-" in p.name] == []


def test_backup_on_demand_copies_a_live_database(kitt_home: Path) -> None:
    kitt = kitt_home / "kitt.db"
    first = cli_process("backup", str(kitt), "--json")
    second = cli_process("backup", f"sqlite:///{kitt}")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    copy = Path(json_of(first.stdout)["backup"])
    assert _rows(copy, "runs") == _rows(kitt, "runs")
    assert "backup written to" in second.stdout
    assert len(list(kitt_home.glob("kitt.backup-*.db"))) == 2  # never overwritten


def test_backup_of_a_missing_file_or_postgresql_says_what_to_do(
    tmp_path: Path, migrated_postgres_url: str
) -> None:
    missing = cli_process("backup", str(tmp_path / "nope.db"))
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr
    postgres = cli_process("backup", migrated_postgres_url)
    assert postgres.returncode == 1
    assert "pg_dump" in postgres.stderr
    assert len(postgres.stderr.strip().splitlines()) == 1


def json_of(text: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(text)
    return value


@pytest.mark.parametrize("dangling", [True, False])
def test_backup_never_writes_through_a_link_planted_at_its_name(
    kitt_home: Path, tmp_path: Path, dangling: bool
) -> None:
    from datetime import UTC, datetime

    from karr_db.backup import backup_sqlite

    kitt = kitt_home / "kitt.db"
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    victim = tmp_path / "victim.txt"
    if not dangling:
        victim.write_text("keep me")
    planted = kitt_home / "kitt.backup-20261207T120000Z.db"
    planted.symlink_to(victim)

    copy = backup_sqlite(kitt, now=now)

    assert copy != planted
    assert planted.is_symlink()
    assert victim.read_text() == "keep me" if not dangling else not victim.exists()
    assert _rows(copy, "runs") == _rows(kitt, "runs")
    assert [p.name for p in kitt_home.iterdir() if p.name.startswith(".")] == []
