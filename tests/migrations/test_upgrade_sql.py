"""``karr-db upgrade --sql`` prints what ``upgrade`` would run on *that* database.

Applying the printed SQL must leave the same schema as running ``upgrade``;
at head there is nothing to print; adopting a legacy database cannot be
rendered offline and is refused in one line; the whole schema only for an
empty database or when asked (``--from-empty``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from karr_db import migrations
from karr_db.errors import NotReadyError
from karr_db.migrations.scripts import head_revision, revision_chain
from tests.support.cli import cli_process
from tests.support.legacy import build_legacy, snapshot


def _apply(url: str, sql: str) -> None:
    """Run a printed script the way a DBA would: the plain client, no karr_db."""
    if url.startswith("sqlite"):
        connection = sqlite3.connect(make_url(url).database or "")
        try:
            connection.executescript(sql)
        finally:
            connection.close()
        return
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(sql.encode())


def _behind(url: str, samples_dir: Path) -> str:
    """An adopted database of the earlier system, left two revisions behind head."""
    build_legacy(url, 1, samples_dir)
    target = revision_chain().order[-3]
    migrations.upgrade(url, target)
    return target


def test_sql_of_an_adopted_database_behind_head_starts_at_its_revision(
    empty_url: str, samples_dir: Path, copy_database: Callable[[str], str]
) -> None:
    start = _behind(empty_url, samples_dir)
    twin = copy_database(empty_url)

    printed = cli_process("upgrade", "--sql", "--database", empty_url)

    assert printed.returncode == 0, printed.stderr
    pending = revision_chain().after(start)
    for revision in pending:
        assert f"-> {revision}" in printed.stdout
    assert f"-> {start}\n" not in printed.stdout  # nothing already applied is repeated
    assert "CREATE TABLE runs" not in printed.stdout
    assert migrations.status(empty_url).alembic_revision == start  # printing changed nothing

    _apply(empty_url, printed.stdout)
    # The script changes the schema; the runs adoption queued wait for upgrade's
    # derivation step, which no script can run, and the database is not ready.
    runs = len(snapshot(empty_url)["runs"]["rows"])
    assert migrations.status(empty_url).derivation_pending == runs > 0
    with pytest.raises(NotReadyError):
        migrations.require_current(empty_url)
    derived = migrations.upgrade(empty_url)
    assert derived.applied == []
    assert derived.derived is not None
    assert derived.derived.runs == runs
    migrations.upgrade(twin)
    assert _schema(snapshot(empty_url)) == _schema(snapshot(twin))
    assert snapshot(empty_url)["runs"]["rows"] == snapshot(twin)["runs"]["rows"]
    assert migrations.check(empty_url) == []
    assert migrations.status(empty_url).alembic_revision == head_revision()


def test_sql_of_a_database_at_head_is_nothing_to_do(migrated_url: str) -> None:
    printed = cli_process("upgrade", "--sql", "--database", migrated_url)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == ""
    assert f"nothing to do: the database is at revision {head_revision()}" in printed.stderr


def test_sql_of_a_legacy_database_is_refused_in_one_line(empty_url: str, samples_dir: Path) -> None:
    build_legacy(empty_url, 2, samples_dir)
    before = snapshot(empty_url)

    printed = cli_process("upgrade", "--sql", "--database", empty_url)

    assert printed.returncode == 1
    assert printed.stdout == ""
    (line,) = printed.stderr.strip().splitlines()
    assert "cannot render the SQL of adopting this database offline" in line
    assert "schema_version 2" in line
    assert "karr-db upgrade" in line
    assert snapshot(empty_url) == before


def test_sql_of_an_empty_database_is_the_whole_schema(
    empty_url: str, copy_database: Callable[[str], str]
) -> None:
    printed = cli_process("upgrade", "--sql", "--database", empty_url)
    assert printed.returncode == 0, printed.stderr
    assert "CREATE TABLE runs" in printed.stdout
    if empty_url.startswith("sqlite"):
        assert not Path(make_url(empty_url).database or "").exists()  # not created by reading
        assert "does not exist: upgrade would create it" in printed.stderr
        sqlite3.connect(make_url(empty_url).database or "").close()
    twin = copy_database(empty_url)
    _apply(empty_url, printed.stdout)
    migrations.require_current(empty_url)  # no run waits for derivation: ready as it is
    assert migrations.check(empty_url) == []
    assert migrations.upgrade(empty_url).derived is None  # revision 0007 queued no run
    migrations.upgrade(twin)
    assert _schema(snapshot(empty_url)) == _schema(snapshot(twin))


def test_from_empty_renders_the_whole_schema_whatever_the_database(
    migrated_url: str,
) -> None:
    printed = cli_process("upgrade", "--sql", "--from-empty", "--database", migrated_url)
    assert printed.returncode == 0, printed.stderr
    assert "CREATE TABLE runs" in printed.stdout
    assert "INSERT INTO alembic_version" in printed.stdout
    assert cli_process("upgrade", "--from-empty", "-d", migrated_url).returncode == 2


def _schema(snap: dict[str, Any]) -> dict[str, Any]:
    """Definitions only (the rows of schema_version carry the time they were
    written), with SQLite's stored DDL compared clause by clause, whitespace
    aside: a rendered script indents with spaces where a live upgrade has tabs."""
    schema: dict[str, Any] = {}
    for name, table in snap.items():
        if name == "sqlite_master":
            # Clause order too: SQLAlchemy emits a table's foreign keys in set order,
            # which differs between processes; column order is compared above.
            schema[name] = sorted(
                (*row[:3], sorted(" ".join(part.split()) for part in _clauses(row[3])))
                for row in table
            )
        else:
            schema[name] = {k: v for k, v in table.items() if k != "rows"}
    return schema


def _clauses(sql: str | None) -> list[str]:
    """The comma-separated parts of a statement, its closing parenthesis apart."""
    text = " ".join((sql or "").split())
    return text.removesuffix(")").rstrip().split(",") + ([")"] if text.endswith(")") else [])
