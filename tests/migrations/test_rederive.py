"""Adopted runs get the derived rows a fresh save of their raw_json produces."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from karr_db import migrations
from karr_db.database import Database
from karr_db.derive import rederive
from karr_db.engine import make_engine
from karr_db.uow import transaction
from tests.support.cli import cli
from tests.support.equality import same
from tests.support.legacy import build_legacy_results, legacy_run_id, save_like_legacy, snapshot


def _derived(url: str, run_id: str) -> dict[tuple[str | None, str], Any]:
    """(test name, metric) -> value of one run, as the repository reads it."""
    with transaction(make_engine(url)) as uow:
        detail = uow.results.get(run_id)
    return {(b.test_name, name): v for b in detail.benchmarks for name, v in b.metrics.items()}


def _hardware(url: str, run_id: str) -> Any:
    with transaction(make_engine(url)) as uow:
        hardware = uow.results.get(run_id).hardware
    return None if hardware is None else hardware.model_dump(exclude={"id"})


def _untimed(table: str) -> Any:
    """A row without its timestamp columns (benchmarks end with timestamp, created_at)."""
    return (lambda row: row[:-2]) if table == "benchmarks" else (lambda row: row)


def _rows(url: str, table: str) -> list[tuple[Any, ...]]:
    return list(snapshot(url)[table]["rows"])


def test_leaderboard_and_history_count_adopted_nested_metrics(
    empty_url: str, samples_dir: Path
) -> None:
    legacy = build_legacy_results(empty_url, samples_dir)
    migrations.upgrade(empty_url)
    native = json.loads((samples_dir / "sample_agent_latency.json").read_text("utf-8"))
    native["timestamp"] = "2026-03-01T09:00:00"
    with Database(empty_url) as db:
        with db.unit_of_work(immediate=True) as uow:
            assert uow.results.save(native).created
        with db.unit_of_work() as uow:
            board = uow.results.leaderboard("ttft_ms.p50", group_by=["engine"])
            history = uow.results.metric_history("ttft_ms.p50").items
    assert sum(row.count for row in board) == legacy.ttft_results + 1
    assert len(history) == legacy.ttft_results + 1
    adopted = {run_id for run_id, _ in legacy.runs}
    assert len({p.run_id for p in history} & adopted) == legacy.ttft_results


def test_adopted_runs_hold_what_a_fresh_save_holds_and_keep_their_legacy_rows(
    empty_url: str, backend: str, samples_dir: Path, request: Any
) -> None:
    legacy = build_legacy_results(empty_url, samples_dir)
    before = {table: _rows(empty_url, table) for table in ("benchmarks", "metrics", "hardware")}
    migrations.upgrade(empty_url)

    after = {table: _rows(empty_url, table) for table in before}
    for table, rows in before.items():
        # Times are rewritten into the canonical form (revision 0006's rule); the
        # rest of each row stays as it was.
        untimed = _untimed(table)
        kept = {untimed(row) for row in after[table]}
        if backend == "sqlite":  # no type changes there: the very rows are kept
            assert {untimed(row) for row in rows} <= kept, table
        assert len(after[table]) >= len(rows)
    old_ids = {row[0] for row in before["benchmarks"]}
    assert {row[0] for row in after["benchmarks"]} == old_ids  # every result had its row

    fresh = request.getfixturevalue("migrated_url")
    for run_id, raw in legacy.runs:
        with transaction(make_engine(fresh), immediate=True) as uow:
            native = uow.results.save(raw).run.id
        adopted, saved = _derived(empty_url, run_id), _derived(fresh, native)
        assert adopted.keys() == saved.keys(), run_id
        for key, value in saved.items():
            # The earlier system's NaN is NULL on SQLite; a legacy value stays as stored.
            assert same(adopted[key], value) or adopted[key] is None, (run_id, key)
        assert _hardware(empty_url, run_id) == _hardware(fresh, native)
    assert migrations.check(empty_url) == []


def test_rederive_adds_what_is_missing_and_is_idempotent(empty_url: str, samples_dir: Path) -> None:
    legacy = build_legacy_results(empty_url, samples_dir)
    migrations.upgrade(empty_url)
    again = rederive(empty_url)
    assert (again.metrics_added, again.benchmarks_added, again.hardware_added) == (0, 0, 0)
    assert again.fingerprints_added == 0
    assert again.runs == len(legacy.runs)

    # The earlier system's code, still running during the switch-over, stores a
    # run (nested metrics skipped, no fingerprint) and one without its hardware row.
    late = json.loads(legacy.runs[-2][1])
    late["timestamp"] = "2026-04-01T00:00:00"
    late_id = legacy_run_id(random.Random(99))
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        save_like_legacy(connection, json.dumps(late), late_id)
        connection.exec_driver_sql(f"DELETE FROM hardware WHERE run_id = '{legacy.runs[0][0]}'")
    engine.dispose()
    assert ("latency", "ttft_ms.p50") not in _derived(empty_url, late_id)
    hardware_before = _hardware(empty_url, legacy.runs[1][0])

    seen: list[tuple[int, int]] = []
    report = rederive(empty_url, progress=lambda done, total: seen.append((done, total)))

    assert report.metrics_added == 14  # ttft_ms and total_latency_ms, 7 values each
    assert report.hardware_added == 1
    assert report.fingerprints_added == 1
    assert seen[-1] == (len(legacy.runs) + 1, len(legacy.runs) + 1)
    assert _derived(empty_url, late_id)[("latency", "ttft_ms.p50")] == 40.0 + 13
    assert _hardware(empty_url, legacy.runs[0][0]) is not None
    assert _hardware(empty_url, legacy.runs[1][0]) == hardware_before
    counts = {t: len(_rows(empty_url, t)) for t in ("benchmarks", "metrics", "hardware")}
    assert rederive(empty_url).metrics_added == 0
    assert {t: len(_rows(empty_url, t)) for t in counts} == counts


def test_a_result_without_its_benchmark_row_gets_one(empty_url: str, samples_dir: Path) -> None:
    legacy = build_legacy_results(empty_url, samples_dir)
    quality = next(run_id for run_id, raw in legacy.runs if '"mmlu_pro"' in raw)
    engine = make_engine(empty_url)
    with engine.begin() as connection:  # lost by the earlier system, metrics and all
        connection.exec_driver_sql(
            "DELETE FROM metrics WHERE benchmark_id IN (SELECT id FROM benchmarks "
            f"WHERE run_id = '{quality}' AND test_name = 'humaneval')"
        )
        connection.exec_driver_sql(
            f"DELETE FROM benchmarks WHERE run_id = '{quality}' AND test_name = 'humaneval'"
        )
        kept = connection.exec_driver_sql(
            f"SELECT id FROM benchmarks WHERE run_id = '{quality}' ORDER BY id"
        ).all()
    engine.dispose()

    migrations.upgrade(empty_url)

    with transaction(make_engine(empty_url)) as uow:
        detail = uow.results.get(quality)
    names = [b.test_name for b in detail.benchmarks]
    assert sorted(names, key=str) == sorted(["mmlu_pro", "humaneval", "ifeval", "long_context"])
    assert [b.id for b in detail.benchmarks][: len(kept)] == [row[0] for row in kept]
    humaneval = next(b for b in detail.benchmarks if b.test_name == "humaneval")
    assert humaneval.metrics["pass_at_1"] is not None


def test_a_document_a_save_would_refuse_is_adopted_and_reported(
    empty_url: str, samples_dir: Path
) -> None:
    legacy = build_legacy_results(empty_url, samples_dir)
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO runs (id, model, engine, timestamp, raw_json) "
            "VALUES ('00badc0ffee00000', 'm', 'e', '2026-02-12 10:00:00', '{\"engine\": \"e\"}')"
        )
    engine.dispose()

    migrations.upgrade(empty_url)
    report = rederive(empty_url)

    assert report.refused == 1
    assert report.refused_examples[0].startswith("00badc0ffee00000: ")
    assert "model" in report.refused_examples[0]
    with transaction(make_engine(empty_url)) as uow:
        repo = uow.results
        assert repo.count() == len(legacy.runs) + 1
        assert repo.get("00badc0ffee00000").benchmarks == []


def test_rederive_command_reports_and_refuses_an_old_schema(
    empty_url: str, samples_dir: Path
) -> None:
    build_legacy_results(empty_url, samples_dir)
    early = cli("rederive", "--database", empty_url)
    assert early.exit_code != 0
    assert "upgrade" in early.output
    migrations.upgrade(empty_url)
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM metrics WHERE metric_name = 'ttft_ms.p99'"))
    engine.dispose()

    result = cli("rederive", "--database", empty_url, "--json")
    assert result.exit_code == 0, result.output
    assert result.json()["metrics_added"] == 16
    plain = cli("rederive", "--database", empty_url)
    assert plain.exit_code == 0, plain.output
    assert "metrics added" in plain.output
