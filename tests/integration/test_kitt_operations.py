"""The operations KITT's web services perform, as repository calls.

Agent manager: register with the agent's own token (upsert by name on
request), heartbeat with the agent's status, list with staleness, delete.
Campaign service: pages with a total, created draft, launched, cancelled,
config edited in draft only, deleted. Quick tests: created queued, read by id,
pages with a total. Results pages: summary counts by engine, model and suite.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from karr_db.errors import (
    AlreadyExistsError,
    InvalidQueryError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from karr_db.models import Agent
from karr_db.models.types import utcnow
from karr_db.repositories.agents import AgentsRepository
from karr_db.repositories.campaigns import CampaignsRepository, RunOutcome
from karr_db.repositories.events import EventsRepository
from karr_db.repositories.quick_tests import QuickTestsRepository
from karr_db.repositories.results import ResultsRepository
from karr_db.tokens import hash_token, token_problem
from tests.support.repositories import on


def _events(session: Session, source_id: str) -> list[tuple[str | None, Any]]:
    page = EventsRepository(session).list(0, source_id=source_id, limit=1000)
    return [(e.event_type, e.data) for e in page.items]


# --- agents ---------------------------------------------------------------------


def test_register_with_the_agents_own_token_stores_only_its_hash(session: Session) -> None:
    token = secrets.token_urlsafe(32)
    agents = on(AgentsRepository, session)
    registered = agents.register("dgx-01", hostname="10.0.0.5", port=8090, token=token)
    assert registered.token.get_secret_value() == token
    agent = registered.agent
    assert (agent.status, agent.hostname, agent.port, agent.has_token) == (
        "online",
        "10.0.0.5",
        8090,
        True,
    )
    stored = session.scalar(select(Agent.token_hash).where(Agent.id == agent.id))
    assert stored == hash_token(token)
    assert token not in json.dumps([d for _, d in _events(session, agent.id)])
    assert agents.authenticate(agent.id, token).id == agent.id
    # A SecretStr is taken as well.
    other = agents.register("dgx-02", token=SecretStr(secrets.token_hex(32)))
    assert other.agent.has_token


@pytest.mark.parametrize(
    "token",
    [
        "",
        "short-token",
        "a" * 64,
        "password" * 8,
        "correct horse battery staple and more words",
        "tab\tseparated" + secrets.token_hex(20),
    ],
)
def test_an_empty_or_weak_token_is_refused_by_field(session: Session, token: str) -> None:
    agents = on(AgentsRepository, session)
    with pytest.raises(ValidationError) as refused:
        agents.register("dgx-01", token=token)
    assert refused.value.fields == ["token"]
    assert token not in str(refused.value) or not token
    assert agents.list().items == []


def test_tokens_from_secrets_pass_the_strength_check() -> None:
    for _ in range(500):
        assert token_problem(secrets.token_hex(20)) is None
        assert token_problem(secrets.token_urlsafe(30)) is None


def test_the_shown_prefix_adds_no_strength() -> None:
    """The first eight characters are stored and shown in clear: a strong-looking
    prefix before a weak rest is refused."""
    weak = "Zq8-Lm3_" + "ab" * 16
    problem = token_problem(weak)
    assert problem is not None
    assert "about 32 bits" in problem
    assert token_problem(secrets.token_hex(16)) is not None  # 24 secret characters: too short


def test_registering_a_known_name_needs_replace(session: Session) -> None:
    agents = on(AgentsRepository, session)
    first = agents.register("dgx-01", hostname="old", port=8090, token=secrets.token_hex(32))
    with pytest.raises(AlreadyExistsError):
        agents.register("dgx-01", hostname="new", token=secrets.token_hex(32))
    assert agents.get(first.agent.id).hostname == "old"


def test_register_with_replace_updates_address_and_token_and_sets_online(
    session: Session,
) -> None:
    agents = on(AgentsRepository, session)
    old_token, new_token = secrets.token_hex(32), secrets.token_hex(32)
    first = agents.register(
        "dgx-01", hostname="old", port=8090, token=old_token, tags=["gpu"], gpu_count=8
    ).agent
    agents.mark_stale_offline(timedelta(0), now=utcnow() + timedelta(hours=1))
    assert agents.get(first.id).status == "offline"

    again = agents.register(
        "dgx-01", hostname="new", port=9000, token=new_token, replace=True, kitt_version="2.0"
    ).agent
    assert again.id == first.id
    assert (again.hostname, again.port, again.status) == ("new", 9000, "online")
    assert again.registered_at == first.registered_at
    assert again.last_heartbeat is not None
    assert first.last_heartbeat is not None
    assert again.last_heartbeat >= first.last_heartbeat
    assert (again.tags, again.gpu_count, again.kitt_version) == (["gpu"], 8, "2.0")
    assert not agents.verify_token(first.id, old_token)
    assert agents.verify_token(first.id, new_token)
    registered = [d for t, d in _events(session, first.id) if t == "agent.registered"]
    assert registered[-1] == {
        "name": "dgx-01",
        "hostname": "new",
        "port": 9000,
        "tags": ["gpu"],
        "replaced": True,
    }
    assert "replaced" not in registered[0]

    # replace=True on an unknown name simply registers it.
    fresh = agents.register("spark", token=secrets.token_hex(32), replace=True).agent
    assert fresh.name == "spark"
    assert len(agents.list().items) == 2


def test_heartbeat_carries_the_agents_status(session: Session) -> None:
    agents = on(AgentsRepository, session)
    agent = agents.register("dgx-01").agent
    assert agents.heartbeat(agent.id, status="idle").status == "idle"
    assert agents.heartbeat(agent.id, status="running").status == "running"
    assert agents.heartbeat(agent.id, status="idle").status == "idle"
    changes = [d for t, d in _events(session, agent.id) if t == "agent.status_changed"]
    assert [(c["from"], c["to"]) for c in changes] == [
        ("online", "idle"),
        ("idle", "running"),
        ("running", "idle"),
    ]
    with pytest.raises(ValidationError) as bad:
        agents.heartbeat(agent.id, status="")
    assert bad.value.fields == ["status"]


def test_listing_with_staleness_then_deleting(session: Session) -> None:
    agents = on(AgentsRepository, session)
    a = agents.register("a").agent
    b = agents.register("b").agent
    agents.heartbeat(a.id, status="idle")
    later = utcnow() + timedelta(minutes=10)
    assert [x.name for x in agents.list(stale_after=timedelta(minutes=5), now=later).items] == [
        "a",
        "b",
    ]
    assert agents.list(stale_after=timedelta(minutes=20), now=later).items == []
    agents.retire(b.id)
    assert [x.name for x in agents.list().items] == ["a"]
    with pytest.raises(NotFoundError):
        agents.get(b.id)


# --- campaigns --------------------------------------------------------------------


def test_campaign_service_flow(session: Session) -> None:
    agent = on(AgentsRepository, session).register("dgx-01").agent
    campaigns = on(CampaignsRepository, session)
    created = campaigns.create("nightly", config={"models": ["a"]}, agent_id=agent.id)
    assert created.status == "draft"
    campaigns.update_config(created.id, {"models": ["a", "b"]})
    campaigns.set_total_runs(created.id, 2)
    queued = campaigns.launch(created.id)
    assert queued.status == "queued"
    with pytest.raises(InvalidTransitionError):
        campaigns.update_config(created.id, {"models": []})
    campaigns.start(created.id)
    campaigns.record_run(created.id, RunOutcome.FAILED)
    campaigns.fail(created.id, "engine crashed")
    relaunched = campaigns.launch(created.id)
    assert (relaunched.status, relaunched.error, relaunched.failed) == ("queued", None, 0)
    assert relaunched.config == {"models": ["a", "b"]}
    assert campaigns.cancel(created.id).status == "cancelled"
    assert [t for t, _ in _events(session, created.id)] == [
        "campaign.created",
        "campaign.updated",
        "campaign.updated",
        "campaign.launched",
        "campaign.started",
        "campaign.progressed",
        "campaign.failed",
        "campaign.launched",
        "campaign.cancelled",
    ]


def test_delete_is_refused_while_running_and_keeps_the_events(session: Session) -> None:
    campaigns = on(CampaignsRepository, session)
    running = campaigns.create("running")
    campaigns.start(running.id)
    before = campaigns.get(running.id)
    with pytest.raises(InvalidTransitionError) as refused:
        campaigns.delete(running.id)
    assert refused.value.current == "running"
    assert campaigns.get(running.id) == before

    for setup in ([], ["launch"], ["start", "complete"], ["cancel"], ["start", "fail"]):
        campaign = campaigns.create("c")
        for step in setup:
            if step == "fail":
                campaigns.fail(campaign.id, "boom")
            else:
                getattr(campaigns, step)(campaign.id)
        campaigns.delete(campaign.id)
        with pytest.raises(NotFoundError):
            campaigns.get(campaign.id)
        history = _events(session, campaign.id)
        assert history[0][0] == "campaign.created"
        assert history[-1][0] == "campaign.deleted"
    with pytest.raises(NotFoundError):
        campaigns.delete("nope")
    assert campaigns.count() == 1


def test_campaign_pages_by_number_with_a_total(session: Session) -> None:
    campaigns = on(CampaignsRepository, session)
    made = [campaigns.create(f"c{i}") for i in range(7)]
    for campaign in made[:3]:
        campaigns.launch(campaign.id)
    first = campaigns.list(page=1, limit=3)
    assert ([c.name for c in first.items], first.total) == (["c6", "c5", "c4"], 7)
    second = campaigns.list(page=2, limit=3)
    assert campaigns.list(cursor=first.next_cursor, limit=3).items == second.items
    last = campaigns.list(page=3, limit=3)
    assert ([c.name for c in last.items], last.total, last.has_more) == (["c0"], 7, False)
    past = campaigns.list(page=4, limit=3)
    assert (past.items, past.total) == ([], 7)
    queued = campaigns.list(status="queued", limit=2, page=2)
    assert ([c.name for c in queued.items], queued.total) == (["c0"], 3)
    with pytest.raises(InvalidQueryError):
        campaigns.list(page=0)
    with pytest.raises(InvalidQueryError):
        campaigns.list(page=1, limit=0)
    with pytest.raises(InvalidQueryError):
        campaigns.list(page=2, cursor=first.next_cursor)


# --- quick tests ------------------------------------------------------------------


def test_quick_tests_are_created_queued_read_by_id_and_paged(session: Session) -> None:
    agent = on(AgentsRepository, session).register("dgx-01").agent
    tests = on(QuickTestsRepository, session)
    made = [
        tests.dispatch(agent.id, model_path=f"/m{i}", engine_name="vllm", benchmark_name="tp")
        for i in range(5)
    ]
    assert {t.status for t in made} == {"queued"}
    assert tests.get(made[2].id).model_path == "/m2"
    page = tests.list(page=2, limit=2, agent_id=agent.id)
    assert ([t.model_path for t in page.items], page.total) == (["/m2", "/m1"], 5)
    assert tests.list(status="claimed", page=1).total == 0


# --- results pages ------------------------------------------------------------------


def test_stats_count_by_suite_too(session: Session, samples_dir: Path) -> None:
    results = on(ResultsRepository, session)
    for path in sorted(samples_dir.glob("*.json")):
        results.save(path.read_bytes())
    results.save(
        dict(json.loads((samples_dir / "sample_accuracy.json").read_text()), suite_name=None)
    )
    stats = results.stats()
    suites = {g.name: (g.runs, g.passed, g.failed) for g in stats.by_suite}
    assert suites == {"quick": (2, 2, 0), "standard": (1, 0, 1), None: (1, 0, 1)}
    assert [g.name for g in stats.by_suite] == ["quick", "standard", None]
    assert sum(g.runs for g in stats.by_suite) == stats.totals.runs
    assert [g.name for g in results.stats({"suite_name": "quick"}).by_suite] == ["quick"]
