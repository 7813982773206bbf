"""``check`` tells a falsified fingerprint or aggregate from a true one, and
``rederive`` puts them right (the application role may write both tables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from karr_db import Database, migrations
from karr_db.derive import rederive
from karr_db.engine import make_engine
from tests.support.legacy import build_legacy


def document(n: int) -> dict[str, Any]:
    return {
        "model": "llama",
        "engine": "vllm",
        "suite_name": f"s{n}",
        "timestamp": f"2026-03-0{n}T10:00:00",
        "results": [{"test_name": "t", "metrics": {"tps": float(n)}}],
    }


def _execute(url: str, sql: str, *params: Any) -> None:
    engine = make_engine(url)
    mark = "%s" if url.startswith("postgresql") else "?"
    with engine.begin() as connection:
        connection.exec_driver_sql(sql.replace("?", mark), params)
    engine.dispose()


def _save(url: str, doc: dict[str, Any]) -> str:
    with Database(url) as db, db.unit_of_work() as unit:
        return unit.results.save(doc).run.id


def test_falsified_fingerprints_and_aggregates_are_found_and_put_right(migrated_url: str) -> None:
    first, second = _save(migrated_url, document(1)), _save(migrated_url, document(2))
    assert migrations.check(migrated_url) == []

    # The first content now "belongs" to the second run; a group's maximum is raised.
    _execute(migrated_url, "DELETE FROM run_fingerprints WHERE run_id = ?", second)
    _execute(migrated_url, "UPDATE run_fingerprints SET run_id = ? WHERE run_id = ?", second, first)
    assert _save(migrated_url, document(1)) == second  # what a falsified entry does
    _execute(migrated_url, "UPDATE leaderboard_aggregates SET value_max = value_max + 1000")

    findings = [f for f in migrations.check(migrated_url) if f.kind == "derived"]
    assert [f.message.split(":")[0] for f in findings] == [
        "run_fingerprints",
        "leaderboard_aggregates",
    ]
    assert first in findings[0].message

    rederive(migrated_url)

    assert migrations.check(migrated_url) == []
    assert _save(migrated_url, document(1)) == first


def test_an_adopted_run_s_fingerprint_is_checked_against_its_document(
    empty_url: str, samples_dir: Path
) -> None:
    """Adopted runs keep legacy ids: their fingerprints are checked by reading the document."""
    build_legacy(empty_url, 1, samples_dir)
    migrations.upgrade(empty_url)
    assert migrations.check(empty_url) == []
    engine = make_engine(empty_url)
    with engine.connect() as connection:
        first, second = (
            connection.exec_driver_sql("SELECT run_id FROM run_fingerprints ORDER BY run_id")
            .scalars()
            .all()[:2]
        )
    engine.dispose()
    _execute(empty_url, "DELETE FROM run_fingerprints WHERE run_id = ?", second)
    _execute(empty_url, "UPDATE run_fingerprints SET run_id = ? WHERE run_id = ?", second, first)

    findings = [f.message for f in migrations.check(empty_url) if f.kind == "derived"]
    assert len(findings) == 1, findings
    assert second in findings[0]

    rederive(empty_url)
    assert migrations.check(empty_url) == []


def test_an_extreme_a_delete_left_unknown_is_not_a_falsification(migrated_url: str) -> None:
    """Deleting the run that held a group's maximum leaves that maximum unknown (the
    delete does not rescan the group); ``check`` accepts it, and a falsified one beside
    it is still found."""
    _save(migrated_url, document(1))
    top = _save(migrated_url, {**document(2), "suite_name": "s1"})
    with Database(migrated_url) as db, db.unit_of_work() as unit:
        unit.results.delete(top)
    engine = make_engine(migrated_url)
    with engine.connect() as connection:
        unknown = connection.exec_driver_sql(
            "SELECT count(*) FROM leaderboard_aggregates WHERE value_max IS NULL"
        ).scalar_one()
    engine.dispose()
    assert unknown > 0
    assert migrations.check(migrated_url) == []

    _execute(migrated_url, "UPDATE leaderboard_aggregates SET value_count = value_count + 1")
    assert [f.kind for f in migrations.check(migrated_url)] == ["derived"]
