"""The leaderboard aggregate equals the row-level answer, whatever was saved and deleted.

The reference for every comparison is the row-level leaderboard of the same
repository (``median=True`` reads the rows) and, for the table itself, a
:func:`rebuild` from the rows.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from karr_db import migrations
from karr_db.derive import rederive
from karr_db.engine import make_engine
from karr_db.errors import InvalidQueryError
from karr_db.migrations.scripts import contract_of, script_directory
from karr_db.models import Benchmark, LeaderboardAggregate, Metric
from karr_db.repositories import leaderboard_aggregate
from karr_db.repositories.results import ResultsRepository
from karr_db.repositories.results.dto import AggregateRow
from karr_db.uow import UnitOfWork, run_transaction, transaction
from tests.support.legacy import build_legacy
from tests.support.repositories import on

METRIC = "tps"
GROUPINGS: list[tuple[str, ...]] = [
    ("model",),
    ("model", "engine"),
    ("gpu_model",),
    ("engine", "environment_type"),
    ("suite_name", "kitt_version"),
]

values = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0]),
)
documents = st.fixed_dictionaries(
    {
        # Few groups, so that runs share them and deletes take away extremes.
        "model": st.sampled_from(["llama", "qwen"]),
        "engine": st.sampled_from(["vllm", "tgi"]),
        "suite": st.just("quick"),
        "gpu": st.sampled_from([None, "H100"]),
        "tests": st.lists(
            st.tuples(st.sampled_from(["throughput", "latency"]), st.lists(values, max_size=3)),
            min_size=1,
            max_size=3,
        ),
    }
)
#: (True, document) saves; (False, index) deletes the index-th run still stored.
operations = st.lists(
    st.one_of(
        st.tuples(st.just(True), documents),
        st.tuples(st.just(False), st.integers(min_value=0, max_value=50)),
    ),
    min_size=1,
    max_size=16,
)


def document(spec: dict[str, Any], tag: int) -> dict[str, Any]:
    return {
        "model": spec["model"],
        "engine": spec["engine"],
        "suite_name": spec["suite"],
        "kitt_version": "1.7.0",
        "timestamp": f"2026-03-01T10:00:{tag % 60:02d}",
        "results": [
            {
                "test_name": test,
                "run_number": number,
                "metrics": {METRIC: value, "other": 1.0, "tag": float(tag)},
            }
            for test, numbers in spec["tests"]
            for number, value in enumerate(numbers or [1.0])
        ],
        "system_info": {
            "gpu": None if spec["gpu"] is None else {"model": spec["gpu"], "count": 1},
            "environment_type": "dgx" if spec["gpu"] == "H100" else "native_linux",
        },
    }


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def same_board(fast: list[AggregateRow], rows: list[AggregateRow]) -> None:
    """Same groups in the same order, same counts and extremes, averages to rounding."""
    assert [(r.group, r.test_name) for r in fast] == [(r.group, r.test_name) for r in rows]
    for a, b in zip(fast, rows, strict=True):
        assert (a.count, a.non_finite, a.min, a.max) == (b.count, b.non_finite, b.min, b.max)
        assert close(a.avg, b.avg), (a, b)
        assert a.median is None


def check_against_rows(repo: ResultsRepository) -> None:
    for group_by in GROUPINGS:
        for order_by in ("avg", "count", "max", group_by[0]):
            kwargs: dict[str, Any] = {"group_by": group_by, "order_by": order_by}
            rows = repo.leaderboard(METRIC, **kwargs)
            same_board(repo.leaderboard(METRIC, median=False, **kwargs), rows)
    per_test = repo.leaderboard(METRIC, group_by=("model",), per_test=True, median=False)
    same_board(per_test, repo.leaderboard(METRIC, group_by=("model",), per_test=True))
    for filters in ({"engine": "vllm"}, {"gpu_model": "H100"}, {"suite_name": "quick"}):
        same_board(
            repo.leaderboard(METRIC, filters=filters, median=False, test_name="latency"),
            repo.leaderboard(METRIC, filters=filters, test_name="latency"),
        )


def aggregate_table(session: Session) -> dict[tuple[str, str], tuple[Any, ...]]:
    table = LeaderboardAggregate.__table__
    rows = session.execute(select(table)).all()
    return {(r.metric_name, r.group_key): tuple(r)[2:] for r in rows}


def same_table(session: Session) -> int:
    """The maintained table equals one rebuilt from the rows (sums to rounding), but for
    extremes a delete left unknown (``None`` in a group with values); how many those are."""
    maintained = aggregate_table(session)
    with session.begin_nested() as savepoint:
        leaderboard_aggregate.rebuild(session)
        rebuilt = aggregate_table(session)
        savepoint.rollback()
    assert maintained.keys() == rebuilt.keys()
    unknown = 0
    for key, row in maintained.items():
        other = rebuilt[key]
        sum_at = len(row) - 4  # value_sum, value_min, value_max, non_finite
        assert row[:sum_at] == other[:sum_at]
        assert close(row[sum_at], other[sum_at])
        assert row[-1] == other[-1]
        for mine, truth in zip(row[sum_at + 1 : -1], other[sum_at + 1 : -1], strict=True):
            assert mine == truth or (mine is None and row[sum_at - 1] > 0), (key, row, other)
            unknown += mine != truth
    return unknown


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_the_aggregate_equals_the_rows_after_random_saves_and_deletes(
    session: Session, ops: list[tuple[bool, Any]]
) -> None:
    repo = on(ResultsRepository, session)
    with session.begin_nested() as savepoint:
        stored: list[str] = []
        for tag, (is_save, what) in enumerate(ops):
            if is_save:
                result = repo.save(document(what, tag))
                if result.created:
                    stored.append(result.run.id)
            elif stored:
                repo.delete(stored.pop(what % len(stored)))
        check_against_rows(repo)
        if same_table(session):
            # A rebuild makes every extreme known again, and the answers stay the rows'.
            leaderboard_aggregate.rebuild(session)
            assert same_table(session) == 0
            check_against_rows(repo)
        savepoint.rollback()


def test_save_many_and_a_repeated_save_count_each_run_once(session: Session) -> None:
    repo = on(ResultsRepository, session)
    spec = {"model": "llama", "engine": "vllm", "suite": "quick", "gpu": "L4"}
    docs = [
        document({**spec, "tests": [("throughput", [float(i), math.nan])]}, i) for i in range(5)
    ]
    repo.save_many(docs)
    repo.save_many(docs)
    repo.save(docs[0])
    (row,) = repo.leaderboard(METRIC, median=False, test_name="throughput")
    assert (row.count, row.non_finite, row.min, row.max) == (5, 5, 0.0, 4.0)
    assert close(row.avg, 2.0)
    same_table(session)


def _rows_read(session: Session, work: Any) -> int:
    """What ``work()`` reads from the results tables: rows fetched on PostgreSQL (this
    transaction's statistics, sequential scans off so that a small table is not read
    whole), virtual-machine steps on SQLite (a count, not a time)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        read = sa.text(
            "SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0) "
            "FROM pg_stat_xact_user_tables "
            "WHERE relname IN ('runs', 'benchmarks', 'metrics', 'hardware')"
        )
        before = connection.execute(read).scalar_one()
        work()
        return int(connection.execute(read).scalar_one() - before)
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    driver = connection.connection.driver_connection
    assert driver is not None
    driver.set_progress_handler(count, 10)
    try:
        work()
    finally:
        driver.set_progress_handler(None, 0)
    return steps[0]


def test_a_delete_costs_the_same_whatever_its_groups_history(session: Session) -> None:
    """Deleting the run that holds its groups' minimum reads what the run's own rows
    cost, not the groups' other runs: a group of 40 runs costs what a group of 3 does.
    (Recomputing the extremes from the remaining rows read all 40.)"""
    repo = on(ResultsRepository, session)
    lowest: dict[str, str] = {}
    for model, size in (("small", 3), ("large", 40)):
        spec = {"model": model, "engine": "vllm", "suite": "quick", "gpu": "L4"}
        for i in range(size):
            doc = document({**spec, "tests": [("throughput", [float(i)])]}, i)
            doc["results"][0]["metrics"]["tag"] = 1.0  # the same value in every run
            run_id = repo.save(doc).run.id
            lowest.setdefault(model, run_id)  # value 0.0: the minimum
    small = _rows_read(session, lambda: repo.delete(lowest["small"]))
    large = _rows_read(session, lambda: repo.delete(lowest["large"]))
    assert large <= small * 1.1, (small, large)
    same_table(session)
    check_against_rows(repo)


def _stored_extremes(session: Session) -> tuple[Any, Any]:
    table = LeaderboardAggregate.__table__
    row = session.execute(
        select(table.c.value_min, table.c.value_max).where(table.c.metric_name == METRIC)
    ).one()
    return row[0], row[1]


def test_deleting_a_groups_extreme_leaves_it_unknown_and_the_rows_answer(
    session: Session,
) -> None:
    repo = on(ResultsRepository, session)
    spec = {"model": "llama", "engine": "vllm", "suite": "quick", "gpu": None}
    ids = [
        repo.save(document({**spec, "tests": [("throughput", [v])]}, i)).run.id
        for i, v in enumerate([5.0, -3.0, 9.0, math.inf, 7.0])
    ]
    repo.delete(ids[4])  # neither extreme: both stay known
    assert _stored_extremes(session) == (-3.0, 9.0)
    repo.delete(ids[1])  # the minimum
    assert _stored_extremes(session) == (None, 9.0)
    later = repo.save(document({**spec, "tests": [("throughput", [20.0])]}, 9)).run.id
    assert _stored_extremes(session) == (None, 20.0)  # an addition keeps it unknown
    (row,) = repo.leaderboard(METRIC, median=False)
    assert (row.count, row.non_finite, row.min, row.max) == (3, 1, 5.0, 20.0)
    leaderboard_aggregate.rebuild(session)
    assert _stored_extremes(session) == (5.0, 20.0)
    repo.delete(later)  # the maximum
    repo.delete(ids[0])
    repo.delete(ids[2])  # the last finite value: none left, so nothing unknown
    assert _stored_extremes(session) == (None, None)
    (row,) = repo.leaderboard(METRIC, median=False)
    assert (row.count, row.non_finite, row.min, row.max, row.avg) == (0, 1, None, None, None)
    repo.delete(ids[3])
    assert repo.leaderboard(METRIC, median=False) == []
    assert aggregate_table(session) == {}


def test_a_limit_cannot_hide_an_unknown_extreme(session: Session) -> None:
    """Ordered by an extreme, a group whose extreme is unknown could fall behind the
    LIMIT: the answer still comes from the rows."""
    repo = on(ResultsRepository, session)
    ids: dict[tuple[str, float], str] = {}
    for model, numbers in (("llama", [9.0, 10.0]), ("qwen", [3.0])):
        spec = {"model": model, "engine": "vllm", "suite": "quick", "gpu": None}
        for i, value in enumerate(numbers):
            doc = document({**spec, "tests": [("throughput", [value])]}, i)
            ids[(model, value)] = repo.save(doc).run.id
    repo.delete(ids[("llama", 10.0)])  # llama's maximum is now unknown
    for order_by in ("max", "min", "avg"):
        kwargs: dict[str, Any] = {"order_by": order_by, "limit": 1}
        same_board(
            repo.leaderboard(METRIC, median=False, **kwargs), repo.leaderboard(METRIC, **kwargs)
        )
    assert repo.leaderboard(METRIC, order_by="max", limit=1, median=False)[0].group == {
        "model": "llama"
    }


def test_filters_the_aggregate_cannot_answer_come_from_the_rows(session: Session) -> None:
    repo = on(ResultsRepository, session)
    spec = {"model": "llama", "engine": "vllm", "suite": "quick", "gpu": "L4"}
    repo.save(document({**spec, "tests": [("throughput", [1.0, 3.0])]}, 1))
    since = {"since": "2026-03-01T10:00:00"}
    board = repo.leaderboard(METRIC, filters=since, median=False)
    assert [(r.count, r.avg, r.median) for r in board] == [(2, 2.0, None)]
    assert repo.leaderboard(METRIC, filters={"since": "2027-01-01"}, median=False) == []
    with pytest.raises(InvalidQueryError, match="median"):
        repo.leaderboard(METRIC, order_by="median", median=False)


def test_maintained_keeps_the_aggregate_right_around_re_derived_rows(session: Session) -> None:
    repo = on(ResultsRepository, session)
    spec = {"model": "qwen", "engine": "tgi", "suite": "quick", "gpu": "H100"}
    run_id = repo.save(document({**spec, "tests": [("throughput", [2.0])]}, 1)).run.id
    benchmark_id = session.execute(
        select(Benchmark.id).where(Benchmark.run_id == run_id)
    ).scalar_one()
    with leaderboard_aggregate.maintained(session, [run_id]):
        # what a re-derivation does: more metric rows for a stored run
        session.execute(
            insert(Metric).values(
                [
                    {"benchmark_id": benchmark_id, "metric_name": METRIC, "metric_value": 10.0},
                    {"benchmark_id": benchmark_id, "metric_name": "derived", "metric_value": 1.0},
                ]
            )
        )
    (row,) = repo.leaderboard(METRIC, median=False)
    assert (row.count, row.min, row.max, row.avg) == (2, 2.0, 10.0, 6.0)
    same_table(session)
    check_against_rows(repo)


def _writer(engine: Engine, worker: int, rounds: int, errors: list[BaseException]) -> None:
    try:
        mine: list[str] = []
        for i in range(rounds):
            spec = {
                "model": ["llama", "qwen"][i % 2],
                "engine": "vllm",
                "suite": "quick",
                "gpu": ["H100", "L4", None][(worker + i) % 3],
                "tests": [("throughput", [float(worker * 100 + i), float(i % 7)])],
            }
            doc = document(spec, worker * 1000 + i)

            def save(uow: UnitOfWork, doc: dict[str, Any] = doc) -> str:
                return uow.results.save(doc).run.id

            mine.append(run_transaction(engine, save, immediate=True))
            if i % 3 == 2:
                victim = mine.pop(0)

                def remove(uow: UnitOfWork, victim: str = victim) -> None:
                    uow.results.delete(victim)

                run_transaction(engine, remove, immediate=True)
    except BaseException as exc:  # reported by the test thread
        errors.append(exc)


def test_concurrent_writers_leave_the_aggregate_equal_to_the_rows(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_writer, args=(engine, worker, 9, errors)) for worker in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with transaction(engine) as uow:
        check_against_rows(uow.results)
        same_table(uow.session)
        assert uow.results.count() == 4 * 6
    engine.dispose()


def test_rederive_makes_the_extremes_a_delete_left_unknown_known_again(
    migrated_url: str,
) -> None:
    engine = make_engine(migrated_url)
    spec = {"model": "llama", "engine": "vllm", "suite": "quick", "gpu": None}
    with transaction(engine) as uow:
        ids = [
            uow.results.save(document({**spec, "tests": [("throughput", [v])]}, i)).run.id
            for i, v in enumerate([4.0, 1.0, 8.0])
        ]
        uow.results.delete(ids[1])
        assert _stored_extremes(uow.session) == (None, 8.0)
    rederive(engine)
    with transaction(engine) as uow:
        assert _stored_extremes(uow.session) == (4.0, 8.0)
        assert same_table(uow.session) == 0
        check_against_rows(uow.results)
    engine.dispose()


def test_the_upgrade_builds_the_aggregate_from_rows_already_stored(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    spec = {"model": "llama", "engine": "vllm", "suite": "quick", "gpu": "L4"}
    with transaction(engine) as uow:
        repo = uow.results
        for i in range(4):
            repo.save(document({**spec, "tests": [("throughput", [float(i), math.nan])]}, i))
        expected = aggregate_table(uow.session)
    # Back to the revision before the table: the rows stay, the aggregate goes.
    (creating,) = [
        rev
        for rev in script_directory().walk_revisions()
        if "leaderboard_aggregates" in contract_of(rev).table_names()
    ]
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE leaderboard_aggregates"))
        connection.execute(
            sa.text("UPDATE alembic_version SET version_num = :v"), {"v": creating.down_revision}
        )
    migrations.upgrade(migrated_url)
    with transaction(engine) as uow:
        assert aggregate_table(uow.session) == expected
        check_against_rows(uow.results)
    assert migrations.check(migrated_url) == []
    engine.dispose()


@pytest.mark.parametrize("version", [1, 2])
def test_an_adopted_database_starts_with_a_complete_aggregate(
    empty_url: str, version: int, samples_dir: Path
) -> None:
    build_legacy(empty_url, version, samples_dir)
    migrations.upgrade(empty_url)
    engine = make_engine(empty_url)
    with transaction(engine) as uow:
        names = uow.session.execute(select(Metric.metric_name).distinct()).scalars().all()
        assert names  # the samples have metrics
        repo = uow.results
        for name in sorted(n for n in names if n is not None)[:5]:
            for group_by in GROUPINGS[:3]:
                same_board(
                    repo.leaderboard(name, group_by=group_by, median=False),
                    repo.leaderboard(name, group_by=group_by),
                )
        same_table(uow.session)
    engine.dispose()


def test_values_near_the_largest_double_neither_refuse_the_save_nor_break_the_aggregate(
    session: Session,
) -> None:
    # A sum of two of them overflows a double; PostgreSQL raises on that overflow.
    repo = on(ResultsRepository, session)
    spec = {"model": "llama", "engine": "vllm", "suite": "quick", "gpu": None}
    big = 1.7e308
    run_id = repo.save(document({**spec, "tests": [("throughput", [big, big])]}, 1)).run.id
    repo.save(document({**spec, "tests": [("throughput", [big])]}, 2))
    (row,) = repo.leaderboard(METRIC, median=False)
    assert (row.count, row.min, row.max) == (3, big, big)
    assert close(row.avg, big)
    repo.delete(run_id)
    (row,) = repo.leaderboard(METRIC, median=False)
    assert (row.count, row.min, row.max) == (1, big, big)
    assert close(row.avg, big)
    same_table(session)


def test_a_subnormal_average_orders_as_the_rows_do(session: Session) -> None:
    """Found by the property test: a value too small for the scaled sum (2.2e-309)
    counted as 0 in the aggregate's average only, so a group averaging just above 0
    sorted below one averaging exactly 0 there and above it from the rows."""
    repo = on(ResultsRepository, session)
    for tag, (model, value) in enumerate([("a", 0.0), ("b", 2.2e-309), ("c", -1.0)]):
        spec = {"model": model, "engine": "vllm", "suite": "quick", "gpu": None}
        repo.save(document({**spec, "tests": [("latency", [value])]}, tag))
    rows = repo.leaderboard(METRIC, group_by=("model",), order_by="avg")
    fast = repo.leaderboard(METRIC, group_by=("model",), order_by="avg", median=False)
    same_board(fast, rows)
    assert [r.group["model"] for r in rows] == [r.group["model"] for r in fast]
