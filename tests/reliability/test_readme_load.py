"""4 writers and 2 readers through the README's own API (``Database.unit_of_work()``,
no retry helper): not one error reaches a caller, on either dialect.

Short in ``make test``; ``make soak`` runs it for a fifth of ``SOAK_SECONDS`` (60 s
at the default 300), which is where docs/reliability.md takes its figures from.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from karr_db.database import Database
from karr_db.models import Event
from tests.reliability.load_helpers import readme_reader, readme_writer
from tests.reliability.reliability_helpers import (
    WORKER_TIMEOUT,
    budget,
    check_store,
    load_samples,
    variant,
)
from tests.support.workers import engine_for

pytestmark = pytest.mark.reliability

WRITERS, READERS = 4, 2


def test_readme_api_under_load_has_no_errors(
    migrated_url: str, backend: str, samples_dir: Path, figures: Any
) -> None:
    url = migrated_url
    seconds = budget(4.0, 0.2)
    with Database(url) as db, db.unit_of_work() as uow:
        agents = [uow.agents.register(f"loaded-{w}").agent.id for w in range(WRITERS)]
        campaign_id = uow.campaigns.create("load", total_runs=10**9).id
        uow.campaigns.start(campaign_id)
        queued = {
            uow.quick_tests.dispatch(
                agents[i % WRITERS], model_path="m", engine_name="vllm", benchmark_name=f"b{i}"
            ).id
            for i in range(400)
        }
    context = multiprocessing.get_context("spawn")
    with context.Pool(WRITERS + READERS) as pool:
        writing = [
            pool.apply_async(
                readme_writer, (url, w, str(samples_dir), agents[w], campaign_id, seconds)
            )
            for w in range(WRITERS)
        ]
        reading = [pool.apply_async(readme_reader, (url, seconds)) for _ in range(READERS)]
        written = [r.get(timeout=WORKER_TIMEOUT) for r in writing]
        read = [r.get(timeout=WORKER_TIMEOUT) for r in reading]

    errors = [e for r in written + read for e in r["first_errors"]]
    assert sum(r["errors"] for r in written + read) == 0, errors
    claimed = [t for r in written for t in r["claimed"]]
    assert len(claimed) == len(set(claimed)), "a quick test was claimed twice"
    assert set(claimed) <= queued
    created = sum(len(r["created"]) for r in written)
    deleted = sum(len(r["deleted"]) for r in written)
    with engine_for(url) as engine:
        check = check_store(engine)
        with Database(engine=engine) as db, db.unit_of_work(readonly=True) as uow:
            campaign = uow.campaigns.get(campaign_id)
            progressed = uow.session.scalar(
                sa.select(sa.func.count()).where(Event.event_type == "campaign.progressed")
            )
    assert check.runs == created - deleted
    recorded = sum(r["recorded"] for r in written)
    assert campaign.finished_runs == recorded == progressed
    figures["backend"] = backend
    figures["processes"] = f"{WRITERS} writers + {READERS} readers"
    figures["seconds_per_process"] = seconds
    figures["writes"] = sum(r["ops"] for r in written)
    figures["reads"] = sum(r["reads"] for r in read)
    figures["runs_created"] = created
    figures["runs_deleted"] = deleted
    figures["claims"] = len(claimed)
    figures["counter_increments"] = recorded
    figures["events_tailed"] = sum(r["events_seen"] for r in read)
    figures["errors"] = 0
    figures["rows_checked"] = check.rows


def test_a_document_saved_again_after_its_delete_checks_clean(
    migrated_url: str, samples_dir: Path
) -> None:
    """The load above saves some documents from several writers and deletes runs, so
    a run may live twice: one run.saved a life, the store check counts them so."""
    document = variant(load_samples(samples_dir), "twice")
    with Database(migrated_url) as db:
        for _ in range(2):
            with db.unit_of_work() as uow:
                run_id = uow.results.save(document).run.id
            with db.unit_of_work() as uow:
                uow.results.delete(run_id)
        with db.unit_of_work() as uow:
            uow.results.save(document)
    with engine_for(migrated_url) as engine:
        assert check_store(engine).runs == 1
