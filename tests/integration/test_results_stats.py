"""Run totals by outcome, engine and model: one statement on both dialects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from karr_db.errors import InvalidQueryError
from karr_db.repositories.results import ResultsRepository
from tests.support.repositories import on


def _save_samples(session: Session, samples_dir: Path) -> dict[str, dict[str, object]]:
    docs = {p.stem: json.loads(p.read_text()) for p in sorted(samples_dir.glob("*.json"))}
    repo = on(ResultsRepository, session)
    for doc in docs.values():
        repo.save(doc)
    unknown = dict(docs["sample_decode_speed"], passed=None, model="no-outcome")
    repo.save(unknown)
    return docs


def test_stats_fold_outcomes_by_engine_and_model(session: Session, samples_dir: Path) -> None:
    docs = _save_samples(session, samples_dir)
    statements: list[str] = []
    bind = session.get_bind()
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(bind, "before_cursor_execute", listener)
    try:
        stats = on(ResultsRepository, session).stats()
    finally:
        event.remove(bind, "before_cursor_execute", listener)

    assert len(statements) == 1
    expected_failed = sum(1 for d in docs.values() if d["passed"] is False)
    assert (stats.totals.runs, stats.totals.failed, stats.totals.unknown) == (
        len(docs) + 1,
        expected_failed,
        1,
    )
    assert stats.totals.passed == len(docs) - expected_failed
    engines = {g.name: (g.runs, g.passed, g.failed, g.unknown) for g in stats.by_engine}
    assert engines == {"ollama": (3, 2, 0, 1), "tgi": (1, 0, 1, 0)}
    models = {g.name: g.runs for g in stats.by_model}
    assert models["no-outcome"] == 1
    assert sum(models.values()) == stats.totals.runs


def test_stats_take_the_run_filters(session: Session, samples_dir: Path) -> None:
    _save_samples(session, samples_dir)
    repo = on(ResultsRepository, session)
    only = repo.stats({"engine": "tgi"})
    assert (only.totals.runs, [g.name for g in only.by_engine]) == (1, ["tgi"])
    assert repo.stats({"gpu_model": "no such gpu"}).totals.runs == 0
    with pytest.raises(InvalidQueryError, match="colour"):
        repo.stats({"colour": "red"})
