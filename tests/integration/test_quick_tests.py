"""Quick tests: dispatch, claim, lifecycle, stale work and listing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from karr_db.errors import InvalidTransitionError, NotFoundError, ValidationError
from karr_db.models.types import utcnow
from karr_db.repositories.agents import AgentsRepository
from karr_db.repositories.events import EventsRepository
from karr_db.repositories.quick_tests import QuickTestDTO, QuickTestsRepository
from tests.support.repositories import on


def events_of(session: Session, source_id: str) -> list[tuple[str | None, Any]]:
    page = EventsRepository(session).list(0, source_id=source_id, limit=1000)
    return [(e.event_type, e.data) for e in page.items]


def dispatch(session: Session, agent_id: str, benchmark: str = "throughput") -> QuickTestDTO:
    return on(QuickTestsRepository, session).dispatch(
        agent_id, model_path="/models/llama", engine_name="vllm", benchmark_name=benchmark
    )


def insert_run(session: Session, run_id: str) -> None:
    session.execute(text("INSERT INTO runs (id, model) VALUES (:id, 'm')"), {"id": run_id})


@pytest.fixture
def agent_id(session: Session) -> str:
    return on(AgentsRepository, session).register("gpu-box-1").agent.id


def test_full_lifecycle_links_the_stored_run(session: Session, agent_id: str) -> None:
    tests = on(QuickTestsRepository, session)
    queued = dispatch(session, agent_id)
    assert (queued.status, queued.agent_id, queued.started_at) == ("queued", agent_id, None)

    claimed = tests.claim_next(agent_id)
    assert claimed is not None
    assert claimed.id == queued.id
    assert claimed.status == "claimed"
    assert claimed.started_at is not None
    assert tests.claim_next(agent_id) is None

    assert tests.start(queued.id).status == "running"
    insert_run(session, "run-1")
    done = tests.complete(queued.id, result_id="run-1")
    assert (done.status, done.result_id) == ("completed", "run-1")
    assert done.completed_at is not None

    assert events_of(session, queued.id) == [
        (
            "quick_test.dispatched",
            {
                "agent_id": agent_id,
                "model_path": "/models/llama",
                "engine_name": "vllm",
                "benchmark_name": "throughput",
                "suite_name": None,
                "engine_mode": "docker",
                "profile_id": "",
            },
        ),
        ("quick_test.claimed", {"from": "queued", "to": "claimed", "agent_id": agent_id}),
        ("quick_test.started", {"from": "claimed", "to": "running", "agent_id": agent_id}),
        (
            "quick_test.completed",
            {"from": "running", "to": "completed", "agent_id": agent_id, "result_id": "run-1"},
        ),
    ]


def test_claims_oldest_first_and_only_the_agents_own(session: Session, agent_id: str) -> None:
    other = on(AgentsRepository, session).register("other").agent.id
    first = dispatch(session, agent_id, "a")
    dispatch(session, other, "x")
    second = dispatch(session, agent_id, "b")
    tests = on(QuickTestsRepository, session)
    claimed = [tests.claim_next(agent_id), tests.claim_next(agent_id), tests.claim_next(agent_id)]
    assert [t.id if t else None for t in claimed] == [first.id, second.id, None]
    assert tests.count(agent_id=other, status="queued") == 1


def test_complete_needs_an_existing_run(session: Session, agent_id: str) -> None:
    tests = on(QuickTestsRepository, session)
    test = dispatch(session, agent_id)
    tests.claim_next(agent_id)
    tests.start(test.id)
    with pytest.raises(NotFoundError, match="run"):
        tests.complete(test.id, result_id="missing")
    assert tests.get(test.id).status == "running"


def test_failure_cancel_and_requeue(session: Session, agent_id: str) -> None:
    tests = on(QuickTestsRepository, session)
    a = dispatch(session, agent_id, "a")
    tests.claim_next(agent_id)
    failed = tests.fail(a.id, "engine crashed")
    assert (failed.status, failed.error) == ("failed", "engine crashed")

    b = dispatch(session, agent_id, "b")
    assert tests.cancel(b.id).status == "cancelled"

    c = dispatch(session, agent_id, "c")
    tests.claim_next(agent_id)
    tests.start(c.id)
    requeued = tests.requeue(c.id)
    assert (requeued.status, requeued.started_at) == ("queued", None)
    again = tests.claim_next(agent_id)
    assert again is not None
    assert again.id == c.id
    assert [t for t, _ in events_of(session, c.id)] == [
        "quick_test.dispatched",
        "quick_test.claimed",
        "quick_test.started",
        "quick_test.requeued",
        "quick_test.claimed",
    ]


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        ([], "start"),
        ([], "complete"),
        ([], "fail"),
        ([], "requeue"),
        (["claim"], "cancel"),
        (["claim"], "complete"),
        (["claim", "start"], "start"),
        (["claim", "start", "fail"], "requeue"),
        (["cancel"], "cancel"),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(
    session: Session, agent_id: str, setup: list[str], action: str
) -> None:
    tests = on(QuickTestsRepository, session)
    test = dispatch(session, agent_id)
    insert_run(session, "run-1")
    steps: dict[str, Callable[[], object]] = {
        "claim": lambda: tests.claim_next(agent_id),
        "start": lambda: tests.start(test.id),
        "complete": lambda: tests.complete(test.id, result_id="run-1"),
        "fail": lambda: tests.fail(test.id, "boom"),
        "cancel": lambda: tests.cancel(test.id),
        "requeue": lambda: tests.requeue(test.id),
    }
    for step in setup:
        steps[step]()
    before = tests.get(test.id)
    log_before = EventsRepository(session).last_id()
    with pytest.raises(InvalidTransitionError):
        steps[action]()
    assert tests.get(test.id) == before
    assert EventsRepository(session).last_id() == log_before


def test_find_stale_reads_held_tests_older_than_the_threshold(
    session: Session, agent_id: str
) -> None:
    tests = on(QuickTestsRepository, session)
    claimed = dispatch(session, agent_id, "a")
    tests.claim_next(agent_id)
    running = dispatch(session, agent_id, "b")
    tests.claim_next(agent_id)
    tests.start(running.id)
    dispatch(session, agent_id, "still queued")
    log_before = EventsRepository(session).last_id()

    assert tests.find_stale(timedelta(minutes=5)) == []
    later = utcnow() + timedelta(minutes=10)
    stale = tests.find_stale(timedelta(minutes=5), now=later)
    assert [t.id for t in stale] == [claimed.id, running.id]
    assert EventsRepository(session).last_id() == log_before  # reading wrote nothing

    tests.requeue(claimed.id)
    tests.fail(running.id, "agent went silent")
    assert tests.find_stale(timedelta(minutes=5), now=later) == []


def test_dispatch_validates_and_needs_an_agent(session: Session, agent_id: str) -> None:
    tests = on(QuickTestsRepository, session)
    with pytest.raises(ValidationError) as invalid:
        tests.dispatch(agent_id, model_path="", engine_name="vllm", benchmark_name=" ")
    assert invalid.value.fields == ["model_path", "benchmark_name"]
    with pytest.raises(NotFoundError, match="agent"):
        dispatch(session, "nope")
    with pytest.raises(NotFoundError):
        tests.get("nope")
    assert tests.count() == 0


def test_legacy_status_reads_as_is(session: Session, agent_id: str) -> None:
    session.execute(
        text("INSERT INTO quick_tests (id, agent_id, status) VALUES ('old', :a, 'dispatched')"),
        {"a": agent_id},
    )
    tests = on(QuickTestsRepository, session)
    assert tests.get("old").status == "dispatched"
    assert [t.id for t in tests.list(status="dispatched").items] == ["old"]
    with pytest.raises(InvalidTransitionError, match="'dispatched'"):
        tests.start("old")


def test_list_pages_newest_first(session: Session, agent_id: str) -> None:
    made = [dispatch(session, agent_id, f"b{i}") for i in range(5)]
    tests = on(QuickTestsRepository, session)
    first = tests.list(agent_id=agent_id, limit=2)
    assert [t.id for t in first.items] == [made[4].id, made[3].id]
    assert first.next_cursor is not None
    rest = tests.list(agent_id=agent_id, limit=10, cursor=first.next_cursor)
    assert [t.id for t in rest.items] == [made[2].id, made[1].id, made[0].id]
    assert rest.next_cursor is None
