"""Workers of the README-API load test: only ``Database`` and ``unit_of_work``, no retry.

Each worker is a top-level function (``spawn`` children import it), runs until
its deadline and reports what it did and every exception that reached it, so
that the parent can assert that none did and compare the store with the
reports.
"""

from __future__ import annotations

import random
import time
import traceback
from typing import Any

from karr_db.database import Database
from karr_db.repositories.campaigns import RunOutcome
from tests.reliability.reliability_helpers import load_samples, variant


def _failed(report: dict[str, Any], exc: BaseException) -> None:
    report["errors"] += 1
    if len(report["first_errors"]) < 3:
        report["first_errors"].append("".join(traceback.format_exception_only(exc)).strip())


def readme_writer(
    url: str, worker: int, samples_dir: str, agent_id: str, campaign_id: str, seconds: float
) -> dict[str, Any]:
    """The writes a dashboard serves, one ``db.unit_of_work()`` each, as the README shows:
    saves (every tenth one a document every writer saves), batches, heartbeats, campaign
    counters, quick-test claims and completions, and deletes of its own runs."""
    samples = load_samples(samples_dir)
    rng = random.Random(worker)
    report: dict[str, Any] = {
        "ops": 0,
        "errors": 0,
        "first_errors": [],
        "created": [],
        "deleted": [],
        "recorded": 0,
        "claimed": [],
    }
    deadline = time.monotonic() + seconds
    with Database(url) as db:
        op = 0
        while time.monotonic() < deadline:
            op += 1
            kind = op % 6
            try:
                with db.unit_of_work() as uow:
                    if kind == 0:
                        key = f"shared-{op // 60}" if op % 60 == 0 else f"w{worker}-{op}"
                        saved = uow.results.save(variant(samples, key))
                        if saved.created:
                            report["created"].append(saved.run.id)
                    elif kind == 1:
                        docs = [variant(samples, f"w{worker}-{op}-{i}") for i in range(2)]
                        for result in uow.results.save_many(docs):
                            if result.created:
                                report["created"].append(result.run.id)
                    elif kind == 2:
                        uow.agents.heartbeat(agent_id, status=rng.choice(["online", "busy"]))
                    elif kind == 3:
                        uow.campaigns.record_run(campaign_id, rng.choice(list(RunOutcome)))
                        report["recorded"] += 1
                    elif kind == 4:
                        claimed = uow.quick_tests.claim_next(agent_id)
                        if claimed is not None:
                            uow.quick_tests.start(claimed.id)
                            saved = uow.results.save(variant(samples, f"w{worker}-{op}-qt"))
                            uow.quick_tests.complete(claimed.id, result_id=saved.run.id)
                            report["claimed"].append(claimed.id)
                            report["created"].append(saved.run.id)
                    elif len(report["created"]) > len(report["deleted"]) + 5:
                        victim = report["created"][len(report["deleted"])]
                        uow.results.delete(victim, detach=True)
                        report["deleted"].append(victim)
            except Exception as exc:
                _failed(report, exc)
            report["ops"] += 1
    return report


def readme_reader(url: str, seconds: float) -> dict[str, Any]:
    """Counts, lists, a leaderboard and the log's tail in ``unit_of_work(readonly=True)``."""
    report: dict[str, Any] = {"reads": 0, "errors": 0, "first_errors": [], "events_seen": 0}
    last_event = 0
    deadline = time.monotonic() + seconds
    with Database(url) as db:
        while time.monotonic() < deadline:
            try:
                with db.unit_of_work(readonly=True) as uow:
                    uow.results.count()
                    uow.results.list(limit=20)
                    uow.results.leaderboard("avg_tps", group_by=("model",), limit=10)
                    page = uow.events.list(last_event, limit=500)
                    uow.agents.list()
                assert all(e.id > last_event for e in page.items), "the log's tail went backwards"
                report["events_seen"] += len(page.items)
                if page.items:
                    last_event = page.items[-1].id
            except Exception as exc:
                _failed(report, exc)
            report["reads"] += 1
    return report
