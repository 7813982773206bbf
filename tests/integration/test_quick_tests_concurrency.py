"""Claimers in several processes never receive the same quick test."""

from __future__ import annotations

import multiprocessing

from karr_db.uow import transaction
from tests.support.workers import PROCESSES, claim_all, engine_for, run_workers

TESTS = 90


def test_each_queued_test_is_claimed_exactly_once(migrated_url: str) -> None:
    with engine_for(migrated_url) as engine:
        with transaction(engine, immediate=True) as uow:
            agent_id = uow.agents.register("gpu-box-1").agent.id
            other = uow.agents.register("other").agent.id
            tests = uow.quick_tests
            queued = {
                tests.dispatch(
                    agent_id, model_path="m", engine_name="vllm", benchmark_name=f"b{i}"
                ).id
                for i in range(TESTS)
            }
            tests.dispatch(other, model_path="m", engine_name="vllm", benchmark_name="theirs")

        context = multiprocessing.get_context("spawn")
        with context.Pool(PROCESSES) as pool:
            results = run_workers(pool, claim_all, [(migrated_url, agent_id)] * PROCESSES)

        claimed = [test_id for result in results for test_id in result]
        assert len(claimed) == len(set(claimed)), "a test was claimed twice"
        assert set(claimed) == queued

        with transaction(engine) as uow:
            tests = uow.quick_tests
            assert tests.count(agent_id=agent_id, status="claimed") == TESTS
            assert tests.count(agent_id=other, status="queued") == 1
            claims = uow.events.list(0, event_types=["quick_test.claimed"], limit=1000)
            assert sorted(e.source_id or "" for e in claims.items) == sorted(claimed)
