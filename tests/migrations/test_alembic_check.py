"""Alembic's own ``alembic check`` agrees with ``karr-db check`` on a fresh database."""

from __future__ import annotations

from typing import Any

from tests.support.cli import cli


def test_alembic_check_finds_no_drift_after_a_fresh_upgrade(
    empty_url: str, run_alembic: Any
) -> None:
    upgraded = run_alembic(empty_url, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    checked = run_alembic(empty_url, "check")
    assert checked.returncode == 0, checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr
    assert cli("check", "--database", empty_url).exit_code == 0


def test_alembic_check_still_sees_real_drift(empty_url: str, run_alembic: Any) -> None:
    # The comparison's exclusions leave KARR's own tables and indexes compared.
    import sqlalchemy as sa

    from karr_db.engine import make_engine

    assert run_alembic(empty_url, "upgrade", "head").returncode == 0
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP INDEX idx_runs_passed"))
    engine.dispose()
    checked = run_alembic(empty_url, "check")
    assert checked.returncode != 0
    assert "idx_runs_passed" in checked.stdout + checked.stderr
