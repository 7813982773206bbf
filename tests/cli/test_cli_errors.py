"""Failures a person can act on: one line on stderr, exit 1, no traceback, no password."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from karr_db import migrations
from karr_db.cli._errors import describe
from karr_db.cli._output import Scrubber, mask_url
from karr_db.database import Database
from karr_db.engine import make_engine
from karr_db.errors import StorageError
from tests.support.cli import cli, cli_process, import_samples

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
    assert "cannot connect to the database at postgresql://u:***@127.0.0.1:1/x" in line
    assert "is the server running" in line
    assert SECRET not in result.output
    assert "Traceback" not in result.output


def test_the_installed_script_reports_an_unreachable_database_the_same_way() -> None:
    result = cli_process("list", env={"KARR_DATABASE_URL": UNREACHABLE})
    assert result.returncode == 1
    assert "cannot connect to the database" in _one_error_line(result.stderr)
    assert SECRET not in result.stdout + result.stderr


def test_debug_shows_the_traceback_still_without_the_password() -> None:
    result = cli("--debug", "status", "--database", UNREACHABLE)
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert "OperationalError" in result.stderr
    assert SECRET not in result.output
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot connect")


def test_a_driver_error_carrying_the_password_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    """pg_hba on the test server trusts loopback, so a wrong password is simulated."""
    password = "hunter2-wrong"

    def refuse(self: Database) -> Any:
        import psycopg.errors

        driver = psycopg.errors.InvalidPassword(
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


def test_a_file_that_is_not_a_database_is_the_layers_error(tmp_path: Path) -> None:
    """SQLite alone: PostgreSQL has no files to mistake for a database."""
    bad = tmp_path / "bad.db"
    bad.write_bytes(bytes(range(256)) * 16)
    url = f"sqlite:///{bad}"
    with pytest.raises(StorageError, match="not a database"):
        migrations.upgrade(url)
    result = cli("upgrade", "--database", url)
    assert result.exit_code == 1
    line = _one_error_line(result.stderr)
    assert "not a SQLite database" in line
    assert "unexpected" not in line
    assert bad.read_bytes() == bytes(range(256)) * 16


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
    user = make_url(url).username
    assert f"{user}:***@" in outputs[0].stdout


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


def test_describe_words_common_driver_failures(tmp_path: Path) -> None:
    import psycopg
    import psycopg.errors

    url = "postgresql://u:pw@127.0.0.1/karr"

    def failure(driver: Exception) -> str:
        return describe(OperationalError("SELECT 1", {}, driver), url)

    missing = psycopg.errors.InvalidCatalogName('database "karr" does not exist')
    assert "does not exist: create it" in failure(missing)
    assert "cannot connect" in failure(psycopg.OperationalError("could not translate host name"))
    assert "pw" not in failure(Exception("something else")).replace("postgresql://u:***@", "")
    sqlite_url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = make_engine(sqlite_url)
    with pytest.raises(sa.exc.DBAPIError) as raised, engine.connect() as connection:
        connection.exec_driver_sql("SELECT * FROM runs")
    engine.dispose()
    assert "run `karr-db upgrade`" in describe(raised.value, sqlite_url)


# --- malformed URLs, downgrades and other languages ---------------

MALFORMED_URLS = [
    "postgresql://u:secret-pw@127.0.0.1:notaport/x",
    "postgresql://u:secret-pw@127.0.0.1:5432:99/x",
    "postgresql://u:secret-pw@[::1/x",
]


@pytest.mark.parametrize("url", MALFORMED_URLS)
def test_a_malformed_url_is_one_line(url: str) -> None:
    result = cli("list", "--database", url)
    assert result.exit_code == 1
    assert "invalid database URL" in _one_error_line(result.stderr)
    assert SECRET not in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["status", "check", "backup", "upgrade"])
@pytest.mark.parametrize("url", MALFORMED_URLS)
def test_every_command_says_invalid_database_url(command: str, url: str) -> None:
    result = cli(command, env={"KARR_DATABASE_URL": url})
    assert result.exit_code == 1
    assert "invalid database URL" in _one_error_line(result.stderr)
    assert SECRET not in result.output


@pytest.mark.parametrize("url", MALFORMED_URLS)
def test_a_malformed_url_from_the_environment_is_one_line_from_the_installed_script(
    url: str,
) -> None:
    result = cli_process("list", env={"KARR_DATABASE_URL": url})
    assert result.returncode == 1
    assert "invalid database URL" in _one_error_line(result.stderr)
    assert SECRET not in result.stdout + result.stderr


def test_a_malformed_url_shows_its_traceback_only_with_debug() -> None:
    result = cli("--debug", "list", "--database", MALFORMED_URLS[0])
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: invalid database URL")
    assert SECRET not in result.output


def test_alembic_downgrade_is_refused_in_one_line(migrated_url: str, run_alembic: Any) -> None:
    result = run_alembic(migrated_url, "downgrade", "-1")
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    # alembic logs the refusal once on stderr and prints "FAILED: ..." on stdout
    refusals = [line for line in result.stderr.splitlines() if "forward-only" in line]
    assert len(refusals) == 1, result.stderr
    assert result.stdout.strip().startswith("FAILED: downgrades are not supported")
    # alembic's own --raiseerr is the --debug of that command
    loud = run_alembic(migrated_url, "--raiseerr", "downgrade", "-1")
    assert "Traceback" in loud.stderr


def _driver_error(sqlstate_class: type[Exception], message: str) -> Exception:
    from sqlalchemy.exc import DBAPIError

    return DBAPIError("SELECT 1", {}, sqlstate_class(message))


@pytest.mark.parametrize(
    ("error", "english", "localized"),
    [
        (
            "InvalidPassword",
            'FATAL:  password authentication failed for user "karr"',
            "FATAL:  Passwort-Authentifizierung für Benutzer »karr« fehlgeschlagen",
        ),
        (
            "InvalidCatalogName",
            'FATAL:  database "karr" does not exist',
            "FATAL:  Datenbank »karr« existiert nicht",
        ),
        (
            "UndefinedTable",
            'relation "runs" does not exist',
            "Relation »runs« existiert nicht",
        ),
        (
            "InsufficientPrivilege",
            "permission denied for table runs",
            "keine Berechtigung für Tabelle runs",
        ),
        ("AdminShutdown", "terminating connection due to administrator command", "Abbruch"),
    ],
)
def test_driver_errors_are_told_apart_by_sqlstate_not_by_language(
    error: str, english: str, localized: str
) -> None:
    """A server with lc_messages=de gives the same one-liner as an English one."""
    import psycopg.errors

    kind = getattr(psycopg.errors, error)
    url = "postgresql://karr:secret-pw@db.example/karr"
    in_english = describe(_driver_error(kind, english), url)
    in_german = describe(_driver_error(kind, localized), url)
    shape = in_english.replace(english, "<driver>")
    assert shape == in_german.replace(localized, "<driver>")
    assert "database error on" not in shape  # classified, not the catch-all


def test_lc_messages_in_another_language_gives_the_same_line(migrated_postgres_url: str) -> None:
    """With a translated server (if this one has the locale), a real error reads the same."""
    engine = make_engine(migrated_postgres_url)
    try:
        with engine.connect() as connection:
            try:
                connection.exec_driver_sql("SET lc_messages = 'de_DE.UTF-8'")
            except sa.exc.DBAPIError:
                pytest.skip("the server has no de_DE locale for lc_messages")
            with pytest.raises(sa.exc.DBAPIError) as raised:
                connection.exec_driver_sql("SELECT * FROM no_such_table")
    finally:
        engine.dispose()
    line = describe(raised.value, migrated_postgres_url)
    assert "has no KARR schema" in line
