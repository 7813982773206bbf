"""Statement counts: save, detail, list and leaderboard must not grow with the data (no N+1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from karr_db.repositories.results import ResultsRepository
from tests.support.repositories import on


@contextmanager
def counting(session: Session) -> Iterator[list[str]]:
    """Every statement sent to the driver (an executemany counts once)."""
    statements: list[str] = []
    engine = session.get_bind()

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def big_document(benchmarks: int, metrics_per_benchmark: int, tag: str) -> dict[str, Any]:
    return {
        "model": f"model-{tag}",
        "engine": "vllm",
        "timestamp": "2026-03-01T10:00:00",
        "results": [
            {
                "test_name": f"test_{b % 3}",
                "run_number": b,
                "metrics": {
                    "latency": {f"p{m}": float(m) for m in range(metrics_per_benchmark // 2)},
                    **{f"m{m}": m * 1.5 for m in range(metrics_per_benchmark // 2)},
                },
            }
            for b in range(benchmarks)
        ],
        "system_info": {"gpu": {"model": "H100"}, "environment_type": "dgx"},
    }


def data_statements(statements: list[str]) -> list[str]:
    """Leave out transaction control, which the caller's mode decides."""
    return [s for s in statements if s.split()[0].upper() not in {"SAVEPOINT", "RELEASE"}]


def test_a_big_save_costs_a_handful_of_statements(session: Session) -> None:
    repo = on(ResultsRepository, session)
    session.execute(select(1))  # the test session's own SAVEPOINT is not the save's
    small = big_document(1, 2, "small")
    large = big_document(12, 20, "large")  # 12 benchmarks, 240 metric values

    with counting(session) as small_statements:
        repo.save(small)
    with counting(session) as large_statements:
        repo.save(large)

    # the event-log lock first of all (one lock order for every write), check, run,
    # fingerprint, hardware, benchmarks (+ their ids on SQLite), metrics, the event
    # log's append (one statement on PostgreSQL, whose function takes the lock; the
    # lock, the next id and the rows on SQLite), the leaderboard aggregate's lock and
    # upsert: as many for 240 metric values as for two
    assert len(data_statements(large_statements)) <= 13
    assert len(large_statements) == len(small_statements)
    assert is_lock(small_statements[0])
    assert is_lock(large_statements[0])
    assert sum("INSERT INTO run_fingerprints" in s for s in large_statements) == 1
    assert sum("INSERT INTO metrics" in s for s in large_statements) == 1

    with counting(session) as again:
        assert not repo.save(large).created
    # the lock, then the existence check, and nothing written
    assert len(again) == 2
    assert is_lock(again[0])


def is_lock(statement: str) -> bool:
    """The event log's lock: PostgreSQL's advisory lock, SQLite's empty INSERT."""
    return "pg_advisory_xact_lock" in statement or "SELECT NULL WHERE 0" in statement


def test_detail_is_at_most_three_statements(session: Session) -> None:
    repo = on(ResultsRepository, session)
    run_id = repo.save(big_document(12, 20, "detail")).run.id
    with counting(session) as statements:
        detail = repo.get(run_id)
    assert len(statements) <= 3
    assert sum(len(b.metrics) for b in detail.benchmarks) == 240


def test_list_count_and_leaderboard_are_one_statement_each(session: Session) -> None:
    repo = on(ResultsRepository, session)
    for i in range(6):
        repo.save(big_document(3, 6, str(i)))

    with counting(session) as statements:
        page = repo.list({"gpu_model": "H100"}, limit=4)
    assert len(statements) == 1
    assert page.next_cursor is not None
    with counting(session) as statements:
        repo.list(limit=4, cursor=page.next_cursor)
    assert len(statements) == 1
    with counting(session) as statements:
        assert repo.count({"environment_type": "dgx"}) == 6
    assert len(statements) == 1
    with counting(session) as statements:
        rows = repo.leaderboard("latency.p1", group_by=["model", "gpu_model"], per_test=True)
    assert len(statements) == 1
    assert len(rows) == 18
    with counting(session) as statements:
        repo.metric_history("m1", engine="vllm")
    assert len(statements) == 1
    with counting(session) as statements:
        repo.compare([r.id for r in page.items])
    assert len(statements) == 1
