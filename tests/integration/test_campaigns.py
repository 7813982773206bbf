"""Campaigns: lifecycle, guarded transitions, counters and newest-first pages."""

from __future__ import annotations

import math
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from karr_db.errors import (
    CounterLimitError,
    InvalidQueryError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from karr_db.repositories.agents import AgentsRepository
from karr_db.repositories.campaigns import CampaignsRepository, RunOutcome
from karr_db.repositories.events import EventsRepository
from tests.support.repositories import on


def events_of(session: Session, source_id: str) -> list[tuple[str | None, Any]]:
    page = EventsRepository(session).list(0, source_id=source_id, limit=1000)
    return [(e.event_type, e.data) for e in page.items]


def test_full_lifecycle_sets_times_counters_and_events(session: Session) -> None:
    agent = on(AgentsRepository, session).register("gpu-box-1").agent
    campaigns = on(CampaignsRepository, session)
    config = {"models": ["llama-3-8b"], "engines": ["vllm"], "temperature": math.inf}
    created = campaigns.create(
        "nightly", description="every model", config=config, agent_id=agent.id, total_runs=3
    )
    assert created.status == "draft"
    assert created.config == config
    assert (created.succeeded, created.failed, created.skipped, created.total_runs) == (0, 0, 0, 3)
    assert created.started_at is None
    assert created.created_at is not None

    running = campaigns.start(created.id)
    assert running.status == "running"
    assert running.started_at is not None
    campaigns.record_run(created.id, RunOutcome.SUCCEEDED)
    campaigns.record_run(created.id, RunOutcome.FAILED)
    progressed = campaigns.record_run(created.id, RunOutcome.SKIPPED)
    assert (progressed.succeeded, progressed.failed, progressed.skipped) == (1, 1, 1)
    assert progressed.finished_runs == 3

    done = campaigns.complete(created.id)
    assert done.status == "completed"
    assert done.completed_at is not None
    assert done.completed_at >= running.started_at

    assert [t for t, _ in events_of(session, created.id)] == [
        "campaign.created",
        "campaign.started",
        "campaign.progressed",
        "campaign.progressed",
        "campaign.progressed",
        "campaign.completed",
    ]
    assert events_of(session, created.id)[-2][1] == {
        "outcome": "skipped",
        "succeeded": 1,
        "failed": 1,
        "skipped": 1,
        "total_runs": 3,
    }
    assert events_of(session, created.id)[-1][1] == {"from": "running", "to": "completed"}


def test_failure_records_the_error_and_restart_clears_it(session: Session) -> None:
    campaigns = on(CampaignsRepository, session)
    campaign = campaigns.create("nightly", total_runs=2)
    campaigns.start(campaign.id)
    campaigns.record_run(campaign.id, RunOutcome.SUCCEEDED)
    failed = campaigns.fail(campaign.id, "agent lost")
    assert (failed.status, failed.error) == ("failed", "agent lost")
    assert failed.completed_at is not None

    restarted = campaigns.restart(campaign.id)
    assert restarted.status == "running"
    assert restarted.error is None
    assert restarted.completed_at is None
    assert restarted.finished_runs == 0
    assert events_of(session, campaign.id)[-1] == (
        "campaign.started",
        {"from": "failed", "to": "running"},
    )
    assert ("campaign.failed", {"from": "running", "to": "failed", "error": "agent lost"}) in (
        events_of(session, campaign.id)
    )


def test_cancel_from_draft_or_running(session: Session) -> None:
    campaigns = on(CampaignsRepository, session)
    draft = campaigns.create("a")
    running = campaigns.create("b")
    campaigns.start(running.id)
    assert campaigns.cancel(draft.id).status == "cancelled"
    cancelled = campaigns.cancel(running.id)
    assert cancelled.status == "cancelled"
    assert cancelled.completed_at is not None


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        ([], "complete"),
        ([], "restart"),
        (["start"], "start"),
        (["start", "complete"], "start"),
        (["start", "complete"], "fail"),
        (["start", "complete"], "cancel"),
        (["cancel"], "start"),
        (["start", "fail"], "cancel"),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(
    session: Session, setup: list[str], action: str
) -> None:
    campaigns = on(CampaignsRepository, session)
    campaign = campaigns.create("nightly")
    steps = {
        "start": lambda: campaigns.start(campaign.id),
        "restart": lambda: campaigns.restart(campaign.id),
        "complete": lambda: campaigns.complete(campaign.id),
        "fail": lambda: campaigns.fail(campaign.id, "boom"),
        "cancel": lambda: campaigns.cancel(campaign.id),
    }
    for step in setup:
        steps[step]()
    before = campaigns.get(campaign.id)
    log_before = EventsRepository(session).last_id()

    with pytest.raises(InvalidTransitionError) as refused:
        steps[action]()
    assert refused.value.current == before.status
    assert campaigns.get(campaign.id) == before
    assert EventsRepository(session).last_id() == log_before


def test_counters_never_pass_the_total_and_need_a_running_campaign(session: Session) -> None:
    campaigns = on(CampaignsRepository, session)
    campaign = campaigns.create("nightly", total_runs=1)
    with pytest.raises(InvalidTransitionError):
        campaigns.record_run(campaign.id, RunOutcome.SUCCEEDED)
    campaigns.start(campaign.id)
    campaigns.record_run(campaign.id, RunOutcome.SUCCEEDED)
    with pytest.raises(CounterLimitError):
        campaigns.record_run(campaign.id, RunOutcome.FAILED)
    assert campaigns.get(campaign.id).finished_runs == 1

    with pytest.raises(CounterLimitError):
        campaigns.set_total_runs(campaign.id, 0)
    assert campaigns.set_total_runs(campaign.id, 2).total_runs == 2
    assert campaigns.record_run(campaign.id, RunOutcome.FAILED).failed == 1
    with pytest.raises(NotFoundError):
        campaigns.record_run("nope", RunOutcome.FAILED)
    with pytest.raises(ValidationError, match="outcome: must be one of") as refused:
        campaigns.record_run(campaign.id, "done")  # type: ignore[arg-type]
    assert refused.value.fields == ["outcome"]


def test_legacy_null_counters_count_from_zero(session: Session) -> None:
    session.execute(
        text(
            "INSERT INTO web_campaigns (id, name, status, total_runs) "
            "VALUES ('legacy', 'old', 'running', 2)"
        )
    )
    campaigns = on(CampaignsRepository, session)
    assert campaigns.get("legacy").succeeded == 0
    assert campaigns.record_run("legacy", RunOutcome.SUCCEEDED).succeeded == 1


def test_create_validates_and_checks_the_agent(session: Session) -> None:
    campaigns = on(CampaignsRepository, session)
    with pytest.raises(ValidationError) as invalid:
        campaigns.create("", config=["not", "an", "object"], total_runs=-1)  # type: ignore[arg-type]
    assert invalid.value.fields == ["name", "config", "total_runs"]
    with pytest.raises(NotFoundError, match="agent"):
        campaigns.create("nightly", agent_id="nope")
    with pytest.raises(NotFoundError):
        campaigns.start("nope")
    assert campaigns.count() == 0


def test_list_and_count_by_status_and_agent_newest_first(session: Session) -> None:
    agents = on(AgentsRepository, session)
    a = agents.register("a").agent
    b = agents.register("b").agent
    campaigns = on(CampaignsRepository, session)
    made = [campaigns.create(f"c{i}", agent_id=(a.id if i % 2 else b.id)) for i in range(7)]
    for campaign in made[:3]:
        campaigns.start(campaign.id)
    # Rows the earlier system left without a creation time come last.
    session.execute(text("INSERT INTO web_campaigns (id, name, status) VALUES ('old', 'o', 'x')"))

    names: list[str | None] = []
    cursor = None
    while True:
        page = campaigns.list(limit=3, cursor=cursor)
        names += [c.name for c in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert names == ["c6", "c5", "c4", "c3", "c2", "c1", "c0", "o"]

    running = campaigns.list(status="running")
    assert [c.name for c in running.items] == ["c2", "c1", "c0"]
    assert [c.name for c in campaigns.list(agent_id=a.id).items] == ["c5", "c3", "c1"]
    assert [c.name for c in campaigns.list(agent_id=a.id, status="running").items] == ["c1"]
    assert campaigns.count() == 8
    assert campaigns.count(status="running") == 3
    assert campaigns.count(agent_id=b.id) == 4
    assert campaigns.count(status="draft", agent_id=b.id) == 2

    with pytest.raises(InvalidQueryError):
        campaigns.list(cursor="not-a-cursor")
    with pytest.raises(InvalidQueryError):
        campaigns.list(limit=0)
