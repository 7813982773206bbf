"""The library refuses a database it cannot use as it stands, cheaply.

``Database(url).unit_of_work()`` on an empty, legacy (not yet adopted), behind
or newer database raises the layer's error naming the next step; tools that
migrate say ``require_current=False``. The check reads the version tables
only: no row counts, and no Alembic import for commands that merely read.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from karr_db import migrations
from karr_db.database import Database
from karr_db.engine import make_engine
from karr_db.errors import MissingDatabaseError, NewerSchemaError, NotReadyError
from karr_db.head import HEAD_REVISION
from karr_db.migrations.scripts import (
    chain_of,
    head_revision,
    revision_chain,
    script_directory,
)
from tests.support.cli import cli_process, import_samples
from tests.support.legacy import build_legacy


def _use(url: str, **options: object) -> int:
    with Database(url, **options) as db, db.unit_of_work() as uow:  # type: ignore[arg-type]
        return uow.results.count()


def test_an_empty_database_is_refused_with_the_next_step(empty_url: str) -> None:
    if empty_url.startswith("sqlite"):
        Path(empty_url.removeprefix("sqlite:///")).touch()  # an empty file, not a missing one
    with pytest.raises(NotReadyError, match=r"empty: run `karr-db upgrade`") as caught:
        _use(empty_url)
    assert caught.value.kind == "empty"


def test_a_legacy_database_is_refused_until_adopted(empty_url: str, samples_dir: Path) -> None:
    build_legacy(empty_url, 2, samples_dir)
    with pytest.raises(NotReadyError, match=r"schema_version 2, not yet adopted") as caught:
        _use(empty_url)
    assert caught.value.kind == "legacy"
    assert "karr-db upgrade" in str(caught.value)
    migrations.upgrade(empty_url)
    assert _use(empty_url) == len(list(samples_dir.glob("*.json"))) + 1


def test_a_database_behind_head_is_refused_and_names_what_is_pending(empty_url: str) -> None:
    behind = revision_chain().order[-2]
    migrations.upgrade(empty_url, behind)
    with pytest.raises(NotReadyError, match=rf"at revision {behind}, behind") as caught:
        _use(empty_url)
    assert caught.value.kind == "behind"
    assert f"({head_revision()} pending)" in str(caught.value)
    # The way out for tools that migrate (or read regardless):
    assert _use(empty_url, require_current=False) == 0


def test_a_newer_database_is_refused(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(NewerSchemaError, match="9999"):
        _use(migrated_url)


def test_a_current_database_is_used_and_upgrade_needs_no_check(empty_url: str) -> None:
    with Database(empty_url, require_current=False) as db:
        db.upgrade()
        with db.unit_of_work() as uow:
            assert uow.results.count() == 0


@pytest.mark.parametrize("read_only", [True, False])
def test_a_missing_sqlite_file_is_refused_not_created(tmp_path: Path, read_only: bool) -> None:
    missing = tmp_path / "typo.db"
    with pytest.raises(MissingDatabaseError, match=r"typo\.db does not exist"):
        _use(f"sqlite:///{missing}", read_only=read_only)
    assert not missing.exists()


def test_readiness_counts_no_rows(migrated_url: str, samples_dir: Path) -> None:
    import_samples(migrated_url, samples_dir)
    engine = make_engine(migrated_url)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        migrations.require_current(engine)
    finally:
        engine.dispose()
    assert statements
    assert not [s for s in statements if "count(" in s.lower()]


def test_the_head_the_readiness_check_knows_is_alembics() -> None:
    """Adding a revision moves ``HEAD_REVISION`` with it."""
    assert HEAD_REVISION == head_revision() == revision_chain().head
    assert revision_chain() == chain_of(script_directory())


def test_reading_commands_do_not_import_alembic(migrated_url: str, samples_dir: Path) -> None:
    """``karr-db list`` (the entry point's app, in a fresh interpreter) never
    imports Alembic: it only reads."""
    import_samples(migrated_url, samples_dir)
    probe = textwrap.dedent(
        f"""
        import sys
        from karr_db.cli import app
        try:
            app(["list", "--database", {migrated_url!r}], prog_name="karr-db")
        except SystemExit as exit:
            assert not exit.code, exit.code
        print(sorted(m for m in sys.modules if m.split(".")[0] == "alembic"))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert "3 of 3 run(s)" in out.stdout


# --- reading never creates files (through the real karr-db) --------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("list",),
        ("show", "some-run"),
        ("stats",),
        ("status",),
        ("check",),
        ("agents",),
        ("events",),
    ],
)
def test_reading_a_missing_file_says_so_and_creates_nothing(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    missing = tmp_path / "karr-typo.db"
    result = cli_process(*command, "--database", f"sqlite:///{missing}")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: database file {missing} does not exist (check the path; `karr-db upgrade` "
        "creates a new database there)"
    )
    assert list(tmp_path.iterdir()) == []


def test_reading_leaves_the_sqlite_file_unchanged(sqlite_databases: Any, samples_dir: Path) -> None:
    migrated_url = sqlite_databases.migrated()
    import_samples(migrated_url, samples_dir)
    path = Path(migrated_url.removeprefix("sqlite:///"))
    engine = make_engine(migrated_url)
    with engine.connect() as connection:  # fold the WAL in, so the file holds everything
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    before = path.read_bytes()
    for command in (("list",), ("stats",), ("status",), ("events",)):
        assert cli_process(*command, "--database", migrated_url).returncode == 0, command
    assert path.read_bytes() == before


def test_upgrade_says_when_it_creates_a_database(tmp_path: Path) -> None:
    target = tmp_path / "new" / "karr.db"
    result = cli_process("upgrade", "--database", f"sqlite:///{target}")
    assert result.returncode == 0, result.stderr
    assert f"created a new database at {target}" in result.stdout
    again = cli_process("upgrade", "--database", f"sqlite:///{target}")
    assert "created" not in again.stdout
