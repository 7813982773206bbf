"""Failures a person can act on: one line on stderr, exit 1, no traceback, no password."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from karr_db.cli._errors import Scrubber, describe, mask_url
from karr_db.database import Database
from karr_db.db import make_engine
from tests.cli_helpers import cli, cli_process, import_samples

#: A closed port on the loopback interface: connections are refused at once.
UNREACHABLE = "postgresql://u:secret-pw@127.0.0.1:1/x"
SECRET = "secret-pw"


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ("status",),
        ("upgrade",),
        ("check",),
        ("list",),
        ("leaderboard", "--metric", "avg_tps"),
        ("events",),
    ],
)
def test_an_unreachable_database_is_one_line_without_the_password(args: tuple[str, ...]) -> None:
    result = cli(*args, "--database", UNREACHABLE)
    assert result.exit_code == 1
    line = _one_error_line(result.stderr)
    assert "cannot reach the database at postgresql://u:***@127.0.0.1:1/x" in line
    assert "is the server running" in line
    assert SECRET not in result.output
    assert "Traceback" not in result.output


def test_the_installed_script_reports_an_unreachable_database_the_same_way() -> None:
    result = cli_process("list", env={"KARR_DATABASE_URL": UNREACHABLE})
    assert result.returncode == 1
    assert "cannot reach the database" in _one_error_line(result.stderr)
    assert SECRET not in result.stdout + result.stderr


def test_debug_shows_the_traceback_still_without_the_password() -> None:
    result = cli("--debug", "status", "--database", UNREACHABLE)
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert "OperationalError" in result.stderr
    assert SECRET not in result.output
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot reach")


def test_a_driver_error_carrying_the_password_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    """pg_hba on the test server trusts loopback, so a wrong password is simulated."""
    password = "hunter2-wrong"

    def refuse(self: Database) -> Any:
        driver = Exception(
            f'connection to "postgresql://karr:{password}@127.0.0.1/karr" failed: '
            f'FATAL: password authentication failed for user "karr" '
            f"(dsn: host=127.0.0.1 user=karr password={password} dbname=karr)"
        )
        raise OperationalError("SELECT 1", {}, driver)

    monkeypatch.setattr(Database, "require_current", refuse)
    url = f"postgresql://karr:{password}@127.0.0.1:1/karr"
    for debug in ((), ("--debug",)):
        result = cli(*debug, "list", "--database", url)
        assert result.exit_code == 1
        assert password not in result.output
        assert "rejected the credentials for postgresql://karr:***@127.0.0.1:1/karr" in (
            result.stderr
        )
        assert "check the user name and password" in result.stderr


def test_a_missing_file_is_named_and_nothing_is_imported(
    migrated_url: str, samples_dir: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "nope" / "metrics.json"
    result = cli("import", "--database", migrated_url, str(samples_dir), str(missing))
    assert result.exit_code == 1
    line = _one_error_line(result.stderr)
    assert line == f"error: no such file or directory: {missing}; check the path"
    assert cli("stats", "--database", migrated_url, "--json").json()["runs"] == 0


def test_a_rejected_document_exits_1_with_its_reason(migrated_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "metrics.json"
    bad.write_text('{"model": "m", "results": "not a list"}', encoding="utf-8")
    result = cli("import", "--database", migrated_url, str(bad))
    assert result.exit_code == 1
    assert "1 file(s) rejected" in _one_error_line(result.stderr)
    assert "results" in result.stdout  # the reason names the field


def _make_newer(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        connection.execute(sa.text("INSERT INTO schema_version (version) VALUES (99)"))
    engine.dispose()


@pytest.mark.parametrize("args", [("upgrade",), ("list",), ("agents",)])
def test_a_newer_database_is_refused_with_the_next_step(
    migrated_url: str, args: tuple[str, ...]
) -> None:
    _make_newer(migrated_url)
    result = cli(*args, "--database", migrated_url)
    assert result.exit_code == 1
    line = _one_error_line(result.stderr)
    assert "newer" in line
    assert "upgrade karr_db" in line


def test_a_database_without_the_schema_says_to_upgrade(empty_url: str) -> None:
    if empty_url.startswith("sqlite"):
        Path(empty_url.removeprefix("sqlite:///")).touch()  # empty, not missing
    result = cli("list", "--database", empty_url)
    assert result.exit_code == 1
    assert "run `karr-db upgrade`" in _one_error_line(result.stderr)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "invalid database URL"),
        ("mysql://u:secret-pw@127.0.0.1/x", "unsupported database"),
    ],
)
def test_a_bad_url_is_explained(url: str, expected: str) -> None:
    result = cli("status", "--database", url)
    assert result.exit_code == 1
    assert expected in _one_error_line(result.stderr)
    assert SECRET not in result.output


def test_a_password_in_a_working_url_never_appears(
    migrated_postgres_url: str, samples_dir: Path, tmp_path: Path
) -> None:
    # PostgreSQL alone: SQLite URLs carry no password.
    migrated_url = migrated_postgres_url
    password = "visible-if-leaked"
    url = make_url(migrated_url).set(password=password).render_as_string(hide_password=False)
    import_samples(url, samples_dir)
    outputs = [
        cli("status", "--database", url),
        cli("status", "--database", url, "--json"),
        cli("upgrade", "--database", url),
        cli("check", "--database", url),
        cli("list", "--database", url),
        cli("events", "--database", url, "--json"),
        cli("show", "missing-run", "--database", url),
    ]
    for result in outputs:
        assert password not in result.output
    assert "postgres:***@" in outputs[0].stdout


# --- the pieces --------------------------------------------------------------------


def test_scrubber_masks_urls_keywords_and_known_passwords() -> None:
    scrub = Scrubber()
    scrub.add_url("postgresql://karr:p%40ss-word@db/karr")
    text = (
        "url postgresql://karr:p%40ss-word@db/karr other mysql://a:b@c "
        "dsn password=p@ss-word user=karr and bare p@ss-word"
    )
    cleaned = scrub(text)
    assert "p@ss-word" not in cleaned
    assert "p%40ss-word" not in cleaned
    assert "postgresql://karr:***@db/karr" in cleaned
    assert "mysql://a:***@c" in cleaned
    assert "password=***" in cleaned


def test_mask_url() -> None:
    assert mask_url("postgresql://u:pw@h:5/d") == "postgresql://u:***@h:5/d"
    assert mask_url("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"


def test_describe_words_common_driver_failures() -> None:
    url = "postgresql://u:pw@127.0.0.1/karr"

    def failure(message: str) -> str:
        return describe(OperationalError("SELECT 1", {}, Exception(message)), url)

    assert "does not exist: create it" in failure('database "karr" does not exist')
    assert "cannot reach" in failure("could not translate host name")
    assert "run `karr-db upgrade`" in failure("no such table: runs")
    assert "pw" not in failure("something else").replace("postgresql://u:***@", "")
