"""Deduplication sees adopted runs, whose ids are the earlier system's."""

from __future__ import annotations

import json
import multiprocessing
import random
import time
from pathlib import Path

import sqlalchemy as sa

from karr_db import migrations
from karr_db.derive import rederive
from karr_db.engine import make_engine
from karr_db.importing import import_paths
from karr_db.uow import transaction
from tests.support.legacy import build_legacy_results, legacy_run_id, save_like_legacy

#: Processes racing; hard limit on a multi-process test, in seconds.
PROCESSES = 3
TIMEOUT = 120.0


def _count(url: str) -> int:
    with transaction(make_engine(url)) as uow:
        return uow.results.count()


def _save(url: str, raw: str) -> tuple[str, bool]:
    engine = make_engine(url)
    try:
        with transaction(engine, immediate=True) as uow:
            result = uow.results.save(raw)
        return result.run.id, result.created
    finally:
        engine.dispose()


def test_resaving_an_adopted_document_returns_the_adopted_run(
    empty_url: str, samples_dir: Path
) -> None:
    legacy = build_legacy_results(empty_url, samples_dir)
    migrations.upgrade(empty_url)
    before = _count(empty_url)
    assert before == len(legacy.runs)

    for run_id, raw in legacy.runs:
        if raw == legacy.duplicate:
            continue
        assert _save(empty_url, raw) == (run_id, False)
        # The same content with another key order and spacing is the same content.
        reordered = json.dumps(dict(reversed(list(json.loads(raw).items()))), indent=2)
        assert _save(empty_url, reordered) == (run_id, False)
    assert _count(empty_url) == before


def test_importing_adopted_documents_creates_nothing(
    empty_url: str, samples_dir: Path, tmp_path: Path
) -> None:
    legacy = build_legacy_results(empty_url, samples_dir)
    migrations.upgrade(empty_url)
    owners: dict[str, str] = {}
    for n, (run_id, raw) in enumerate(legacy.runs):
        (tmp_path / f"{n:03d}.json").write_text(raw, encoding="utf-8")
        owners.setdefault(raw, run_id)
    outcomes = import_paths(make_engine(empty_url), [tmp_path]).outcomes
    assert {o.status for o in outcomes} == {"already_present"}
    for outcome in outcomes:
        raw = Path(outcome.path).read_text(encoding="utf-8")
        expected = legacy.duplicate_ids[0] if raw == legacy.duplicate else owners[raw]
        assert outcome.run_id == expected, outcome.path
    assert _count(empty_url) == len(legacy.runs)


def test_a_document_stored_twice_keeps_both_runs_and_saving_returns_the_oldest(
    empty_url: str, samples_dir: Path
) -> None:
    legacy = build_legacy_results(empty_url, samples_dir)
    older, newer = legacy.duplicate_ids
    assert newer < older  # the id order is not the age order
    migrations.upgrade(empty_url)

    assert _save(empty_url, legacy.duplicate) == (older, False)
    with transaction(make_engine(empty_url)) as uow:
        repo = uow.results
        assert repo.get_document(older) == repo.get_document(newer)
        repo.delete(older, detach=True)
    # Its twin takes over once re-derivation has run.
    assert rederive(empty_url).fingerprints_added == 1
    assert _save(empty_url, legacy.duplicate) == (newer, False)
    assert _count(empty_url) == len(legacy.runs) - 1


def _save_at(url: str, raw: str, start: float) -> tuple[str, bool]:
    time.sleep(max(0.0, start - time.time()))
    return _save(url, raw)


def _rederive_at(url: str, start: float) -> tuple[str, bool]:
    time.sleep(max(0.0, start - time.time()))
    rederive(url)
    return "", False


def test_concurrent_saves_of_an_adopted_document_return_the_adopted_run(
    empty_url: str, samples_dir: Path
) -> None:
    legacy = build_legacy_results(empty_url, samples_dir)
    migrations.upgrade(empty_url)
    run_id, raw = legacy.runs[2]
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        start = time.time() + 3.0  # let every process import first, then race
        results = pool.starmap_async(_save_at, [(empty_url, raw, start)] * PROCESSES).get(
            timeout=TIMEOUT
        )
    assert results == [(run_id, False)] * PROCESSES
    assert _count(empty_url) == len(legacy.runs)


def test_saves_racing_rederive_over_a_late_legacy_run_agree_on_one_run(
    empty_url: str, samples_dir: Path
) -> None:
    """The earlier system's code, still writing during the switch-over, stores a run
    (no fingerprint); saves of its document race the re-derivation that registers it."""
    legacy = build_legacy_results(empty_url, samples_dir)
    migrations.upgrade(empty_url)
    late = json.loads(legacy.runs[0][1])
    late["note"] = "written by the earlier system after adoption"
    raw = json.dumps(late)
    late_id = legacy_run_id(random.Random(7))
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        save_like_legacy(connection, raw, late_id)
    engine.dispose()
    before = _count(empty_url)

    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        start = time.time() + 3.0
        work = pool.starmap_async(_save_at, [(empty_url, raw, start)] * (PROCESSES - 1))
        rederived = pool.apply_async(_rederive_at, (empty_url, start))
        saved = work.get(timeout=TIMEOUT)
        rederived.get(timeout=TIMEOUT)

    owners = {run_id for run_id, _ in saved}
    assert len(owners) == 1, saved  # every save got the same run
    (owner,) = owners
    assert sum(created for _, created in saved) == (0 if owner == late_id else 1)
    assert _save(empty_url, raw) == (owner, False)  # and so does every later save
    assert _count(empty_url) == before + (owner != late_id)
    engine = make_engine(empty_url)
    with engine.connect() as connection:
        entry = connection.execute(
            sa.text("SELECT run_id FROM run_fingerprints WHERE run_id IN (:a, :b)"),
            {"a": late_id, "b": owner},
        ).scalars()
        assert list(entry) == [owner]
    engine.dispose()
