"""Two processes registering the same agent name or launching the same campaign."""

from __future__ import annotations

import multiprocessing

from sqlalchemy import Engine

from karr_db.uow import transaction
from tests.support.workers import (
    PROCESSES,
    engine_for,
    launch_campaigns,
    register_agents,
    run_workers,
    start_or_delete,
)

NAMES = [f"agent-{i}" for i in range(20)]


def _registered_events(engine: Engine) -> list[dict[str, object]]:
    with transaction(engine) as uow:
        page = uow.events.list(0, event_types=["agent.registered"], limit=1000)
    return [e.data for e in page.items]


def test_racing_registrations_of_a_name_create_one_agent(migrated_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        results = run_workers(pool, register_agents, [(migrated_url, NAMES, False)] * PROCESSES)

    winners = sorted(name for accepted in results for name in accepted)
    assert winners == sorted(NAMES)  # each name accepted exactly once
    with engine_for(migrated_url) as engine:
        with transaction(engine) as uow:
            agents = uow.agents
            listed = agents.list()
            assert sorted(a.name or "" for a in listed.items) == sorted(NAMES)
            for accepted in results:
                for name, token in accepted.items():
                    assert agents.verify_token(agents.get_by_name(name).id, token)
        assert len(_registered_events(engine)) == len(NAMES)


def test_racing_upserts_of_a_name_leave_one_agent_and_the_last_token(migrated_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        results = run_workers(pool, register_agents, [(migrated_url, NAMES, True)] * PROCESSES)

    assert all(sorted(accepted) == sorted(NAMES) for accepted in results)  # nobody refused
    with engine_for(migrated_url) as engine:
        with transaction(engine) as uow:
            agents = uow.agents
            assert sorted(a.name or "" for a in agents.list().items) == sorted(NAMES)
            for name in NAMES:
                agent = agents.get_by_name(name)
                assert agent.status == "online"
                verifying = [r[name] for r in results if agents.verify_token(agent.id, r[name])]
                # Exactly one registration is the last; its token and address hold.
                assert len(verifying) == 1
                assert agent.hostname == f"host-{verifying[0][:6]}"
        events = _registered_events(engine)
    assert len(events) == PROCESSES * len(NAMES)
    created = sorted(str(e["name"]) for e in events if not e.get("replaced"))
    assert created == sorted(NAMES)  # one creation per name, the rest updates


def test_racing_launches_have_exactly_one_winner_per_campaign(migrated_url: str) -> None:
    with engine_for(migrated_url) as engine:
        with transaction(engine, immediate=True) as uow:
            campaigns = uow.campaigns
            ids = [campaigns.create(f"c{i}").id for i in range(20)]

        context = multiprocessing.get_context("spawn")
        with context.Pool(PROCESSES) as pool:
            results = run_workers(pool, launch_campaigns, [(migrated_url, ids)] * PROCESSES)

        winners = [campaign_id for result in results for campaign_id in result]
        assert sorted(winners) == sorted(ids)
        with transaction(engine) as uow:
            assert uow.campaigns.count(status="queued") == len(ids)
            launched = uow.events.list(0, event_types=["campaign.launched"], limit=1000)
        assert sorted(e.source_id or "" for e in launched.items) == sorted(ids)


def test_a_campaign_started_while_being_deleted_is_either_running_or_gone(
    migrated_url: str,
) -> None:
    with engine_for(migrated_url) as engine:
        with transaction(engine, immediate=True) as uow:
            campaigns = uow.campaigns
            ids = [campaigns.create(f"c{i}").id for i in range(20)]

        context = multiprocessing.get_context("spawn")
        with context.Pool(2) as pool:
            started, deleted = run_workers(
                pool,
                start_or_delete,
                [(migrated_url, ids, "start"), (migrated_url, ids[::-1], "delete")],
            )

        assert set(started).isdisjoint(deleted)
        assert set(started) | set(deleted) == set(ids)
        with transaction(engine) as uow:
            campaigns = uow.campaigns
            assert campaigns.count(status="running") == len(started)
            assert campaigns.count() == len(started)
            events = uow.events.list(0, limit=1000).items
        for campaign_id in deleted:
            history = [e.event_type for e in events if e.source_id == campaign_id]
            assert history == ["campaign.created", "campaign.deleted"]
