"""``schema_version`` holds KITT's numbers 1..11, each recorded by the revision that
makes that schema; karr_db's own revisions record nothing there, and a number above
KITT's 11 is refused (KITT's later schemas are adopted in test_lineage_adoption.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from karr_db import migrations
from karr_db.engine import make_engine
from karr_db.errors import UnadoptableSchemaError
from karr_db.migrations.scripts import contracts, head_revision, script_directory
from karr_db.repositories.results import ResultsRepository
from tests.support.helpers import alembic_versions, schema_versions
from tests.support.legacy import build_legacy, snapshot
from tests.support.repositories import on

ALL_REVISIONS = [r.revision for r in reversed(list(script_directory().walk_revisions()))]
OWN_REVISIONS = [r for r, c in contracts().items() if c.reference_schema_version is None]


@pytest.mark.parametrize("version", [12, 40])
def test_a_schema_above_kitts_11_is_refused_untouched(
    empty_url: str, backend: str, version: int, samples_dir: Path
) -> None:
    build_legacy(
        empty_url,
        2,
        samples_dir,
        extra=[
            f"INSERT INTO schema_version (version, applied_at) VALUES ({version}, '2026-04-01')"
        ],
    )
    before = snapshot(empty_url)

    assert migrations.status(empty_url).kind == "unadoptable"
    with pytest.raises(UnadoptableSchemaError) as caught:
        migrations.upgrade(empty_url)

    message = str(caught.value)
    assert f"KITT's schema {version}" in message
    assert "1 to 11" in message
    assert "drop" not in message.lower()  # no advice that would lose data
    assert snapshot(empty_url) == before
    assert [f.kind for f in migrations.check(empty_url)] == ["state"]


def test_a_fresh_database_records_kitts_numbers_1_to_11(empty_url: str) -> None:
    migrations.upgrade(empty_url)
    assert schema_versions(empty_url) == list(range(1, 12))
    status = migrations.status(empty_url)
    assert (status.schema_version, status.head_schema_version) == (11, 11)
    assert status.head_revision == head_revision()
    assert migrations.check(empty_url) == []


def test_a_database_written_with_versions_3_and_4_moves_to_the_new_numbering(
    empty_url: str,
) -> None:
    # The release before revision 0005 recorded 3 and 4 for its own revisions.
    migrations.upgrade(empty_url, "0004")
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        for version in (3, 4):
            connection.execute(
                sa.text("INSERT INTO schema_version (version, applied_at) VALUES (:v, :t)"),
                {"v": version, "t": "2026-11-27 10:00:00.000000+00:00"},
            )
    engine.dispose()
    # What later revisions add (an index, a table) is drift while they are pending.
    kinds = [f.kind for f in migrations.check(empty_url) if f.kind != "drift"]
    assert kinds == ["pending", "bridge"]

    report = migrations.upgrade(empty_url)

    assert report.applied == ALL_REVISIONS[ALL_REVISIONS.index("0005") :]
    # 0005 removes karr_db's old 3 and 4; KITT's schemas 3 and 4 record them again.
    assert schema_versions(empty_url) == list(range(1, 12))
    assert migrations.check(empty_url) == []


def test_a_head_database_that_lost_alembic_version_is_adopted_back_to_a_checked_head(
    migrated_url: str, samples_dir: Path
) -> None:
    document = json.loads(sorted(samples_dir.glob("*.json"))[0].read_text())
    engine = make_engine(migrated_url)
    with engine.begin() as connection:
        with Session(bind=connection) as session:
            saved = on(ResultsRepository, session).save(document)
            session.flush()
        connection.exec_driver_sql("DROP TABLE alembic_version")
    engine.dispose()
    runs_before = snapshot(migrated_url)["runs"]["rows"]

    assert migrations.status(migrated_url).kind == "legacy"
    report = migrations.upgrade(migrated_url)

    assert report.adopted
    # Stamped at KITT's schema 11, every revision of karr_db's own runs again: the
    # append-only triggers and the query indexes are back.
    assert report.applied == OWN_REVISIONS
    assert alembic_versions(migrated_url) == [head_revision()]
    assert migrations.check(migrated_url) == []
    assert snapshot(migrated_url)["runs"]["rows"] == runs_before
    engine = make_engine(migrated_url)
    with engine.connect() as connection, Session(bind=connection) as session:
        summary = on(ResultsRepository, session).get_summary(saved.run.id)
        assert summary is not None
        assert summary.id == saved.run.id
    engine.dispose()


def test_check_names_rows_karr_db_does_not_write(migrated_url: str) -> None:
    # A later KITT, seeing 11, ran its own migration 12 here.
    engine = make_engine(migrated_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO schema_version (version, applied_at) "
            "VALUES (12, '2026-12-01 10:00:00.000000+00:00')"
        )
    engine.dispose()
    findings = migrations.check(migrated_url)
    assert [f.kind for f in findings] == ["bridge"]
    assert "rows [12] karr_db does not write" in findings[0].message
