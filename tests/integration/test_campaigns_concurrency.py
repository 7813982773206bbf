"""Campaign counters and transitions stay exact when several processes race."""

from __future__ import annotations

import multiprocessing

from karr_db.uow import transaction
from tests.support.workers import PROCESSES, engine_for, record_runs, run_workers, start_campaigns

TOTAL_RUNS = 240
PER_WORKER = 100  # 300 attempts for 240 planned runs: 60 must be refused
OUTCOMES = ("succeeded", "failed", "skipped")
RACED_CAMPAIGNS = 20


def test_concurrent_increments_are_exact_and_never_pass_the_total(migrated_url: str) -> None:
    with engine_for(migrated_url) as engine:
        with transaction(engine, immediate=True) as uow:
            campaigns = uow.campaigns
            campaign_id = campaigns.create("nightly", total_runs=TOTAL_RUNS).id
            campaigns.start(campaign_id)

        work = [
            (migrated_url, campaign_id, [OUTCOMES[(w + i) % 3] for i in range(PER_WORKER)])
            for w in range(PROCESSES)
        ]
        context = multiprocessing.get_context("spawn")
        with context.Pool(PROCESSES) as pool:
            results = run_workers(pool, record_runs, work)

        accepted = {key: sum(r[key] for r in results) for key in (*OUTCOMES, "refused")}
        assert accepted["refused"] == PROCESSES * PER_WORKER - TOTAL_RUNS
        with transaction(engine) as uow:
            campaign = uow.campaigns.get(campaign_id)
            progress = uow.events.list(0, event_types=["campaign.progressed"], limit=1000)
        assert (campaign.succeeded, campaign.failed, campaign.skipped) == (
            accepted["succeeded"],
            accepted["failed"],
            accepted["skipped"],
        )
        assert campaign.finished_runs == TOTAL_RUNS
        # One event per accepted run, and the counts they report only grow.
        assert len(progress.items) == TOTAL_RUNS
        sums = [e.data["succeeded"] + e.data["failed"] + e.data["skipped"] for e in progress.items]
        assert sums == list(range(1, TOTAL_RUNS + 1))


def test_racing_starts_have_exactly_one_winner_per_campaign(migrated_url: str) -> None:
    with engine_for(migrated_url) as engine:
        with transaction(engine, immediate=True) as uow:
            campaigns = uow.campaigns
            ids = [campaigns.create(f"c{i}").id for i in range(RACED_CAMPAIGNS)]

        context = multiprocessing.get_context("spawn")
        with context.Pool(PROCESSES) as pool:
            results = run_workers(pool, start_campaigns, [(migrated_url, ids)] * PROCESSES)

        winners = [campaign_id for result in results for campaign_id in result]
        assert sorted(winners) == sorted(ids)
        with transaction(engine) as uow:
            assert uow.campaigns.count(status="running") == RACED_CAMPAIGNS
            started = uow.events.list(0, event_types=["campaign.started"], limit=1000)
        assert sorted(e.source_id or "" for e in started.items) == sorted(ids)
