"""Relationships and cascades: the database deletes children, the ORM never loads them for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, InvalidRequestError
from sqlalchemy.orm import Session, selectinload

from karr_db.models import Agent, Benchmark, Hardware, Metric, QuickTest, Run, WebCampaign


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _run(run_id: str = "run-1") -> Run:
    run = Run(id=run_id, model="m", engine="vllm", passed=True, raw_json={"model": "m"})
    for n in range(3):
        bench = Benchmark(test_name=f"t{n}", run_number=n, passed=n % 2 == 0)
        bench.metrics = [Metric(metric_name=f"k{i}", metric_value=float(i)) for i in range(4)]
        run.benchmarks.append(bench)
    run.hardware.append(Hardware(gpu_model="H100", gpu_count=2))
    return run


def _count(session: Session, model: type) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def test_deleting_a_run_cascades_in_the_database_without_loading_children(
    engine: sa.Engine,
) -> None:
    with Session(engine) as session, session.begin():
        session.add(_run())
    with Session(engine) as session, session.begin():
        run = session.get(Run, "run-1")
        assert run is not None
        with statements(engine) as seen:
            session.delete(run)
            session.flush()
        assert len(seen) == 1
        assert seen[0].lstrip().upper().startswith("DELETE FROM RUNS")
    with Session(engine) as session:
        assert [_count(session, m) for m in (Run, Benchmark, Metric, Hardware)] == [0, 0, 0, 0]


def test_plain_sql_delete_cascades_too(engine: sa.Engine) -> None:
    with Session(engine) as session, session.begin():
        session.add_all([_run("a"), _run("b")])
    with engine.begin() as connection:
        connection.execute(sa.delete(Run).where(Run.id == "a"))
    with Session(engine) as session:
        assert _count(session, Benchmark) == 3
        assert _count(session, Metric) == 12
        assert _count(session, Hardware) == 1


def test_children_load_only_when_asked(engine: sa.Engine) -> None:
    with Session(engine) as session, session.begin():
        session.add(_run())
    with Session(engine) as session:
        run = session.get(Run, "run-1")
        assert run is not None
        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            _ = run.benchmarks
        loaded = session.scalars(
            sa.select(Run).options(selectinload(Run.benchmarks).selectinload(Benchmark.metrics))
        ).one()
        assert sorted(len(b.metrics) for b in loaded.benchmarks) == [4, 4, 4]


def test_referenced_agent_and_run_are_protected_by_the_database(engine: sa.Engine) -> None:
    with Session(engine) as session, session.begin():
        agent = Agent(id="agent-1", name="dgx")
        session.add_all([agent, _run()])
        session.flush()
        session.add(WebCampaign(id="c1", name="nightly", agent_id="agent-1", config_json={}))
        session.add(QuickTest(id="q1", agent_id="agent-1", result_id="run-1"))
    for model, key in ((Agent, "agent-1"), (Run, "run-1")):
        with Session(engine) as session:
            session.begin()
            row = session.get(model, key)
            session.delete(row)
            with pytest.raises(IntegrityError):
                session.flush()
            session.rollback()
    with Session(engine) as session:
        campaign = session.get(WebCampaign, "c1")
        quick = session.get(QuickTest, "q1")
        assert campaign is not None
        assert campaign.agent_id == "agent-1"  # never nulled behind the caller's back
        assert quick is not None
        assert (quick.agent_id, quick.result_id) == ("agent-1", "run-1")


def test_agent_repr_never_shows_the_token() -> None:
    agent = Agent(id="a", name="n", token="sha256$abcdef")
    assert "abcdef" not in repr(agent)
