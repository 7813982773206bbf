"""KITT's services called from several processes at once: registrations, heartbeats, launches."""

from __future__ import annotations

import multiprocessing
import secrets

from karr_db.database import Database
from tests.support.kitt_workers import heartbeat_until_idle, launch_all, register_names
from tests.support.workers import PROCESSES, run_workers

NAMES = [f"agent-{i}" for i in range(12)]


def _events(url: str, event_type: str) -> list[str | None]:
    with Database(url) as database, database.unit_of_work(readonly=True) as uow:
        page = uow.events.list(0, event_types=[event_type], limit=1000)
    return [event.source_id for event in page.items]


def test_racing_registrations_with_different_tokens_leave_the_first_one(migrated_url: str) -> None:
    """Each name is taken once; the other processes' tokens are refused, never swapped in."""
    tokens = [{name: secrets.token_hex(32) for name in NAMES} for _ in range(PROCESSES)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        results = run_workers(
            pool, register_names, [(migrated_url, t, f"host-{i}") for i, t in enumerate(tokens)]
        )
    winners = sorted(name for accepted in results for name in accepted)
    assert winners == sorted(NAMES)
    with Database(migrated_url) as database, database.unit_of_work(readonly=True) as uow:
        assert sorted(a.name or "" for a in uow.agents.list().items) == sorted(NAMES)
        for worker, accepted in enumerate(results):
            for name, agent_id in accepted.items():
                assert uow.agents.verify_token(agent_id, tokens[worker][name])
                assert uow.agents.get(agent_id).hostname == f"host-{worker}"
    assert len(_events(migrated_url, "agent.registered")) == len(NAMES)


def test_racing_registrations_of_one_agent_keep_one_id(migrated_url: str) -> None:
    """An agent restarted several times at once (same token): one agent per name."""
    tokens = {name: secrets.token_hex(32) for name in NAMES}
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        results = run_workers(
            pool, register_names, [(migrated_url, tokens, "host") for _ in range(PROCESSES)]
        )
    for name in NAMES:
        assert len({accepted[name] for accepted in results}) == 1  # everyone got the same id
    with Database(migrated_url) as database, database.unit_of_work(readonly=True) as uow:
        assert len(uow.agents.list().items) == len(NAMES)


def test_racing_heartbeats_never_hand_out_a_test_twice(migrated_url: str) -> None:
    with Database(migrated_url) as database, database.unit_of_work() as uow:
        agent_id = uow.agents.register("dgx").agent.id
        queued = [
            uow.quick_tests.dispatch(
                agent_id, model_path=f"/m/{i}", engine_name="vllm", benchmark_name="throughput"
            ).id
            for i in range(24)
        ]
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        results = run_workers(pool, heartbeat_until_idle, [(migrated_url, agent_id)] * PROCESSES)
    handed_out = [test_id for received in results for test_id in received]
    assert sorted(handed_out) == sorted(queued)  # each exactly once
    assert sorted(str(s) for s in _events(migrated_url, "quick_test.claimed")) == sorted(queued)


def test_racing_launches_launch_each_campaign_once(migrated_url: str) -> None:
    with Database(migrated_url) as database, database.unit_of_work() as uow:
        ids = [uow.campaigns.create(f"c{i}").id for i in range(12)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        results = run_workers(pool, launch_all, [(migrated_url, ids)] * PROCESSES)
    assert all(all(answers) for answers in results)  # KITT's handler sees success each time
    assert sorted(str(s) for s in _events(migrated_url, "campaign.launched")) == sorted(ids)
    with Database(migrated_url) as database, database.unit_of_work(readonly=True) as uow:
        assert uow.campaigns.count(status="queued") == len(ids)
