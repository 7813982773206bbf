"""Reading runs back: detail, list/count, cursors, delete, leaderboard, history, compare."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from karr_db.errors import InvalidQueryError, NotFoundError, StillReferencedError
from karr_db.models import Benchmark, Event, Hardware, Metric, QuickTest, Run
from karr_db.repositories.results import ResultsRepository
from karr_db.repositories.results.dto import AggregateRow, RunSummary
from tests.support.repositories import on


def doc(
    model: str,
    engine: str,
    day: int,
    values: list[float],
    *,
    test: str = "throughput",
    gpu: str | None = "RTX 4090",
    suite: str = "quick",
    passed: bool = True,
    env: str = "native_linux",
) -> dict[str, Any]:
    """A small document with one benchmark per value of ``avg_tps``."""
    return {
        "model": model,
        "engine": engine,
        "suite_name": suite,
        "timestamp": f"2026-03-{day:02d}T10:00:00",
        "passed": passed,
        "kitt_version": "1.7.0",
        "results": [
            {
                "test_name": test,
                "run_number": i + 1,
                "passed": True,
                "metrics": {"avg_tps": v, "latency": {"p50": 10.0 * (i + 1)}},
            }
            for i, v in enumerate(values)
        ],
        "system_info": {
            "gpu": None if gpu is None else {"model": gpu, "count": 1},
            "environment_type": env,
        },
    }


@pytest.fixture
def repo(session: Session) -> ResultsRepository:
    return on(ResultsRepository, session)


@pytest.fixture
def runs(repo: ResultsRepository) -> dict[str, str]:
    documents = {
        "a1": doc("llama", "vllm", 1, [10.0, 20.0]),
        "a2": doc("llama", "vllm", 2, [30.0]),
        "b1": doc("llama", "llama_cpp", 3, [5.0, math.nan], gpu="H100", env="docker"),
        "c1": doc("qwen", "vllm", 4, [100.0, 1.0, 50.0], suite="standard", passed=False),
        "c2": doc("qwen", "vllm", 5, [math.inf], suite="standard", gpu=None),
    }
    return {key: repo.save(d).run.id for key, d in documents.items()}


def ids(page_items: list[RunSummary]) -> list[str]:
    return [r.id for r in page_items]


# --- detail ------------------------------------------------------------------


def test_detail_has_benchmarks_metrics_and_hardware(
    repo: ResultsRepository, runs: dict[str, str]
) -> None:
    detail = repo.get(runs["c1"])
    assert [b.run_number for b in detail.benchmarks] == [1, 2, 3]
    assert detail.benchmarks[2].metrics == {"avg_tps": 50.0, "latency.p50": 30.0}
    assert detail.passed is False
    assert detail.suite_name == "standard"
    assert detail.timestamp == datetime(2026, 3, 4, 10, tzinfo=UTC)
    assert detail.hardware is not None
    assert detail.hardware.gpu_model == "RTX 4090"


def test_missing_runs_are_not_found(repo: ResultsRepository) -> None:
    with pytest.raises(NotFoundError):
        repo.get("no-such-run")
    with pytest.raises(NotFoundError):
        repo.get_document("no-such-run")
    with pytest.raises(NotFoundError):
        repo.get_summary("no-such-run")
    with pytest.raises(NotFoundError):
        repo.delete("no-such-run")


def test_dtos_serialise_nan_as_documented(repo: ResultsRepository, runs: dict[str, str]) -> None:
    detail = repo.get(runs["b1"])
    data = json.loads(detail.model_dump_json())
    assert data["benchmarks"][1]["metrics"]["avg_tps"] == "NaN"
    again = type(detail).model_validate_json(detail.model_dump_json())
    assert math.isnan(again.benchmarks[1].metrics["avg_tps"])  # type: ignore[arg-type]
    page = repo.list({"model": "qwen"}, order_by="timestamp")
    assert json.loads(page.model_dump_json())["items"][0]["id"] == runs["c2"]


# --- list and count ------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["c2", "c1", "b1", "a2", "a1"]),
        ({"model": "llama"}, ["b1", "a2", "a1"]),
        ({"engine": "vllm", "model": "llama"}, ["a2", "a1"]),
        ({"suite": "standard"}, ["c2", "c1"]),
        ({"suite_name": "quick"}, ["b1", "a2", "a1"]),
        ({"passed": False}, ["c1"]),
        ({"kitt_version": "1.7.0"}, ["c2", "c1", "b1", "a2", "a1"]),
        ({"gpu_model": "H100"}, ["b1"]),
        ({"environment_type": "docker"}, ["b1"]),
        (
            {"since": "2026-03-02T10:00:00", "until": datetime(2026, 3, 4, 10, tzinfo=UTC)},
            ["b1", "a2"],
        ),
    ],
)
def test_filters(
    repo: ResultsRepository, runs: dict[str, str], filters: dict[str, Any], expected: list[str]
) -> None:
    page = repo.list(filters)
    assert ids(page.items) == [runs[k] for k in expected]
    assert repo.count(filters) == len(expected)


def test_summaries_carry_the_hardware_headline(
    repo: ResultsRepository, runs: dict[str, str]
) -> None:
    by_id = {r.id: r for r in repo.list().items}
    assert by_id[runs["b1"]].gpu_model == "H100"
    assert by_id[runs["b1"]].environment_type == "docker"
    assert by_id[runs["c2"]].gpu_model is None


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.list({"modle": "x"}),
        lambda r: r.count({"gpu": "x"}),
        lambda r: r.list({"passed": "maybe"}),
        lambda r: r.list(order_by="raw_json"),
        lambda r: r.list(limit=0),
        lambda r: r.list(cursor="not a cursor"),
        lambda r: r.list(offset=-1),
        lambda r: r.leaderboard("avg_tps", group_by=["runs.id"]),
        lambda r: r.leaderboard("avg_tps", order_by="sum"),
        lambda r: r.compare(["only-one"]),
    ],
)
def test_unknown_fields_are_errors_never_ignored(repo: ResultsRepository, call: Any) -> None:
    with pytest.raises(InvalidQueryError):
        call(repo)


def test_the_error_names_the_unknown_filter(repo: ResultsRepository) -> None:
    with pytest.raises(InvalidQueryError, match="modle: unknown filter"):
        repo.list({"modle": "x"})


@pytest.mark.parametrize(
    ("order_by", "descending"),
    [("timestamp", True), ("timestamp", False), ("model", False), ("total_time_seconds", True)],
)
def test_cursor_pages_cover_every_run_once_in_order(
    repo: ResultsRepository, runs: dict[str, str], order_by: str, descending: bool
) -> None:
    everything = ids(repo.list(order_by=order_by, descending=descending, limit=100).items)
    seen: list[str] = []
    cursor = None
    while True:
        page = repo.list(order_by=order_by, descending=descending, limit=2, cursor=cursor)
        seen.extend(ids(page.items))
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == everything
    assert sorted(seen) == sorted(runs.values())


def test_cursor_stays_correct_while_runs_arrive(
    repo: ResultsRepository, runs: dict[str, str]
) -> None:
    first = repo.list(limit=2)
    assert ids(first.items) == [runs["c2"], runs["c1"]]
    # a newer run, an older one, and one in the middle of what is left
    repo.save(doc("new", "vllm", 9, [1.0]))
    repo.save(doc("old", "vllm", 1, [2.0], suite="x"))
    middle = repo.save(doc("mid", "vllm", 2, [3.0])).run.id
    rest: list[str] = []
    cursor = first.next_cursor
    while cursor is not None:
        page = repo.list(limit=2, cursor=cursor)
        rest.extend(ids(page.items))
        cursor = page.next_cursor
    originals = [runs[k] for k in ("b1", "a2", "a1")]
    assert [r for r in rest if r in originals] == originals
    assert middle in rest
    assert not set(rest) & set(ids(first.items))


def test_a_cursor_only_fits_its_own_order(repo: ResultsRepository, runs: dict[str, str]) -> None:
    cursor = repo.list(limit=1).next_cursor
    assert cursor is not None
    with pytest.raises(InvalidQueryError, match="cursor was made for order"):
        repo.list(limit=1, cursor=cursor, order_by="model")


def test_offset_paging(repo: ResultsRepository, runs: dict[str, str]) -> None:
    page = repo.list(limit=2, offset=2)
    assert ids(page.items) == [runs["b1"], runs["a2"]]


# --- delete ------------------------------------------------------------------


def row_counts(session: Session) -> tuple[int, ...]:
    return tuple(
        session.execute(select(func.count()).select_from(t)).scalar_one()
        for t in (Run, Benchmark, Metric, Hardware)
    )


def test_delete_cascades_to_benchmarks_metrics_and_hardware(
    session: Session, repo: ResultsRepository, runs: dict[str, str]
) -> None:
    assert row_counts(session) == (5, 9, 18, 5)
    repo.delete(runs["c1"])
    assert row_counts(session) == (4, 6, 12, 4)
    assert repo.count() == 4
    events = session.execute(
        select(Event.event_type).where(Event.source_id == runs["c1"]).order_by(Event.id)
    ).scalars()
    assert list(events) == ["run.saved", "run.deleted"]


def test_delete_refuses_a_run_a_quick_test_points_to(
    session: Session, repo: ResultsRepository, runs: dict[str, str]
) -> None:
    session.add(QuickTest(id="qt-1", status="completed", result_id=runs["a1"]))
    session.flush()
    with pytest.raises(StillReferencedError, match="qt-1") as caught:
        repo.delete(runs["a1"])
    assert caught.value.referenced_by == ["quick test qt-1"]
    assert repo.count() == 5

    repo.delete(runs["a1"], detach=True)
    assert repo.count() == 4
    result_id = session.execute(select(QuickTest.result_id).where(QuickTest.id == "qt-1"))
    assert result_id.scalar_one() is None


# --- leaderboard ---------------------------------------------------------------


def board(rows: list[AggregateRow]) -> dict[tuple[Any, ...], AggregateRow]:
    return {(*r.group.values(), r.test_name): r for r in rows}


def test_leaderboard_by_model_excludes_non_finite_values(
    repo: ResultsRepository, runs: dict[str, str]
) -> None:
    rows = repo.leaderboard("avg_tps", group_by=["model"])
    assert [r.group for r in rows] == [{"model": "qwen"}, {"model": "llama"}]
    qwen, llama = rows
    # qwen: 100, 1, 50 and +inf -> the infinity is counted apart
    assert (qwen.count, qwen.non_finite, qwen.min, qwen.max, qwen.median) == (
        3,
        1,
        1.0,
        100.0,
        50.0,
    )
    assert qwen.avg == pytest.approx(151 / 3)
    # llama: 10, 20, 30, 5 and NaN
    assert (llama.count, llama.non_finite, llama.median) == (4, 1, 15.0)
    assert llama.avg == pytest.approx(16.25)
    assert (llama.min, llama.max) == (5.0, 30.0)


def test_leaderboard_groups_by_several_fields_and_per_test(
    repo: ResultsRepository, runs: dict[str, str]
) -> None:
    rows = board(
        repo.leaderboard(
            "latency.p50",
            group_by=["engine", "gpu_model"],
            per_test=True,
            order_by="engine",
            descending=False,
        )
    )
    assert set(rows) == {
        ("llama_cpp", "H100", "throughput"),
        ("vllm", "RTX 4090", "throughput"),
        ("vllm", None, "throughput"),
    }
    vllm = rows[("vllm", "RTX 4090", "throughput")]
    # a1: 10, 20; a2: 10; c1: 10, 20, 30
    assert (vllm.count, vllm.median, vllm.max) == (6, 15.0, 30.0)


def test_leaderboard_with_only_non_finite_values(
    repo: ResultsRepository, runs: dict[str, str]
) -> None:
    rows = repo.leaderboard("avg_tps", group_by="gpu_model", filters={"model": "qwen"})
    by_gpu = {r.group["gpu_model"]: r for r in rows}
    none_row = by_gpu[None]
    assert (none_row.count, none_row.non_finite, none_row.avg, none_row.median) == (
        0,
        1,
        None,
        None,
    )
    assert [r.group["gpu_model"] for r in rows] == ["RTX 4090", None]  # NULL averages last


def test_leaderboard_of_an_unknown_metric_is_empty(
    repo: ResultsRepository, runs: dict[str, str]
) -> None:
    assert repo.leaderboard("no_such_metric") == []


# --- history and compare -------------------------------------------------------


def test_metric_history_is_ordered_by_time(repo: ResultsRepository, runs: dict[str, str]) -> None:
    points = repo.metric_history(
        "avg_tps", model="llama", engine="vllm", test_name="throughput"
    ).items
    assert [(p.run_id, p.run_number, p.value) for p in points] == [
        (runs["a1"], 1, 10.0),
        (runs["a1"], 2, 20.0),
        (runs["a2"], 1, 30.0),
    ]
    assert points[0].timestamp == datetime(2026, 3, 1, 10, tzinfo=UTC)
    nan_points = repo.metric_history("avg_tps", engine="llama_cpp").items
    assert nan_points[1].value is not None
    assert math.isnan(nan_points[1].value)


def test_metric_history_reads_a_dashboards_page_by_default(repo: ResultsRepository) -> None:
    """100 points unless asked for more (each point costs index probes), the rest
    a cursor away; the largest page holds them all."""
    run_id = repo.save(doc("llama", "vllm", 1, [float(i) for i in range(101)])).run.id
    first = repo.metric_history("avg_tps")
    assert [p.value for p in first.items] == [float(i) for i in range(100)]
    rest = repo.metric_history("avg_tps", cursor=first.next_cursor)
    assert [(p.run_id, p.run_number, p.value) for p in rest.items] == [(run_id, 101, 100.0)]
    assert rest.next_cursor is None
    assert len(repo.metric_history("avg_tps", limit=1000).items) == 101


def test_compare_puts_runs_side_by_side(repo: ResultsRepository, runs: dict[str, str]) -> None:
    comparison = repo.compare([runs["a1"], runs["c1"], runs["a2"]])
    assert comparison.run_ids == [runs["a1"], runs["c1"], runs["a2"]]
    rows = {(r.test_name, r.run_number, r.metric): r for r in comparison.rows}
    first = rows[("throughput", 1, "avg_tps")]
    assert first.values == [10.0, 100.0, 30.0]
    assert first.differences == [0.0, 90.0, 20.0]
    third = rows[("throughput", 3, "avg_tps")]
    assert third.values == [None, 50.0, None]
    assert third.differences == [None, None, None]
    assert len(comparison.rows) == 6


def test_compare_names_a_missing_run(repo: ResultsRepository, runs: dict[str, str]) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        repo.compare([runs["a1"], "nope"])


def test_samples_compare(session: Session, samples_dir: Path) -> None:
    repo = on(ResultsRepository, session)
    a = repo.save(json.loads((samples_dir / "sample_decode_speed.json").read_text())).run.id
    b = repo.save(json.loads((samples_dir / "sample_accuracy.json").read_text())).run.id
    comparison = repo.compare([a, b])
    rows = {(r.test_name, r.run_number, r.metric): r for r in comparison.rows}
    assert rows[("throughput", 2, "avg_tps")].values == [45.21, None]
    assert rows[("mmlu_pro", 1, "accuracy")].values == [None, 0.6125]
