"""The smaller things a user trips on."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from karr_db.database import Database
from karr_db.engine import make_engine
from karr_db.migrations.scripts import head_revision
from tests.cli.test_cli import COMMANDS, REVISIONS
from tests.support.cli import KARR_DB, cli, import_samples, write_variants
from tests.support.legacy import build_legacy

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_ctrl_c_during_import_says_what_was_stored_and_how_to_resume(
    migrated_url: str, samples_dir: Path, tmp_path: Path
) -> None:
    """A real import process gets SIGINT part-way; what it reports is what is stored."""
    write_variants(samples_dir, tmp_path / "docs", 400)
    environment = {k: v for k, v in os.environ.items() if k != "KARR_DATABASE_URL"}
    with subprocess.Popen(
        [str(KARR_DB), "import", "-d", migrated_url, "--batch-size", "1", str(tmp_path / "docs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        for _ in range(5):  # a line per file once it is committed: some are stored
            assert process.stdout.readline().startswith("imported")
        process.send_signal(signal.SIGINT)
        _rest, errors = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT, errors
    match = re.search(
        r"interrupted after (\d+) of 400 file\(s\) \(stopped after the batch in progress\): "
        r"(\d+) imported",
        errors,
    )
    assert match, errors
    assert "Traceback" not in errors
    assert "Run the same command again to resume" in errors
    with Database(migrated_url) as db, db.unit_of_work() as uow:
        assert uow.results.count() == int(match.group(2)) >= 5
    again = cli("import", "-d", migrated_url, "--json", str(tmp_path / "docs"))
    statuses = [o["status"] for o in again.json()["outcomes"]]
    assert statuses.count("already_present") == int(match.group(2))
    assert statuses.count("imported") == 400 - int(match.group(2))


def test_the_newer_database_message_names_what_is_newer(migrated_url: str) -> None:
    """It once read "at 0004, newer than revision 0004": both sides are now named
    as what they are, and differ."""
    head = head_revision()
    engine = make_engine(migrated_url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    result = cli("list", "--database", migrated_url)
    assert result.exit_code == 1
    assert f"schema is at revision 9999, newer than revision {head}, the newest" in (result.stderr)


def test_the_adoption_message_names_the_schema_version(empty_url: str, samples_dir: Path) -> None:
    build_legacy(empty_url, 2, samples_dir)
    result = cli("upgrade", "--database", empty_url)
    assert result.exit_code == 0, result.output
    assert "adopted the legacy database (it was at schema_version 2" in result.stdout
    assert "revision -" not in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_words_not_python_types(command: str) -> None:
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert not re.search(r"<(str|int|float|path|list\[|bool|datetime)", result.stdout, re.I), (
        result.stdout
    )
    assert "--database URL" in result.stdout or command == "docs"


def test_import_help_names_its_argument() -> None:
    assert "PATH" in cli("import", "--help").stdout
    assert "RUN_ID" in cli("compare", "--help").stdout


def test_events_without_follow_print_a_table_with_a_header(
    migrated_url: str, samples_dir: Path
) -> None:
    import_samples(migrated_url, samples_dir)
    result = cli("events", "--database", migrated_url)
    assert result.exit_code == 0
    header = next(line for line in result.stdout.splitlines() if line.strip())
    assert header.split() == ["id", "time", "type", "source", "data"]
    assert result.stdout.count("run.saved") == 3
    assert "3 event(s)" in result.stdout


def test_list_json_has_the_total_and_a_cursor_to_continue(
    migrated_url: str, samples_dir: Path
) -> None:
    ids = import_samples(migrated_url, samples_dir)
    first = cli("list", "-d", migrated_url, "--json", "--limit", "2").json()
    assert first["total"] == 3
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    rest = cli("list", "-d", migrated_url, "--json", "--cursor", first["next_cursor"]).json()
    assert rest["next_cursor"] is None
    assert {r["id"] for r in first["items"] + rest["items"]} == set(ids)
    bad = cli("list", "-d", migrated_url, "--cursor", "garbage")
    assert bad.exit_code == 1
    assert "malformed cursor" in bad.stderr


def test_campaign_json_keeps_nan_in_its_config(migrated_url: str) -> None:
    with Database(migrated_url) as db, db.unit_of_work() as uow:
        uow.campaigns.create("nan", config={"temperature": math.nan, "top": [math.inf, 1.5]})
    (campaign,) = cli("campaigns", "--database", migrated_url, "--json").json()
    assert campaign["config"] == {"temperature": "NaN", "top": ["Infinity", 1.5]}


def test_grant_help_says_it_revokes_create_on_public_from_public() -> None:
    text = " ".join(cli("grant", "--help").stdout.split())
    assert "revokes CREATE on the schema (public by default) from PUBLIC" in text


def test_readme_upgrade_example_reaches_the_head_revision() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    example = readme.split("$ karr-db upgrade\n", 1)[1].split("$ ", 1)[0]
    assert f"applied: {', '.join(REVISIONS)}" in example
    assert f"database at revision {head_revision()}" in example


def test_performance_doc_does_not_claim_what_its_table_contradicts() -> None:
    text = (REPO_ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    assert "the event appends and the migrations are within 1.5x" not in text
