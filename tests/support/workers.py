"""Worker functions for the multi-process tests of the operations repositories and of
KITT's web-service operations.

Top-level functions taking the database URL, so that ``spawn`` children can
import and run them; each builds its own engine (:func:`engine_for`) and disposes of it.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.pool import Pool
from typing import Any, TypeVar

from sqlalchemy import Engine

from karr_db.db import transaction
from karr_db.engine import make_engine
from karr_db.errors import (
    AlreadyExistsError,
    CounterLimitError,
    InvalidTransitionError,
    NotFoundError,
)
from karr_db.repositories.agents import AgentsRepository
from karr_db.repositories.campaigns import CampaignsRepository, RunOutcome
from karr_db.repositories.events import EventsRepository
from karr_db.repositories.quick_tests import QuickTestsRepository

#: Hard limit on any multi-process test, in seconds.
TIMEOUT = 120.0
#: Worker processes per test: enough to race on a 2-core machine.
PROCESSES = 3

T = TypeVar("T")


@contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def run_workers(pool: Pool, func: Callable[..., T], args: list[tuple[Any, ...]]) -> list[T]:
    """Run ``func`` over ``args`` in ``pool`` and wait, at most :data:`TIMEOUT`."""
    return pool.starmap_async(func, args).get(timeout=TIMEOUT)


def append_events(url: str, worker: int, count: int) -> int:
    """Append ``count`` events, one transaction each, and hold each transaction
    open a moment after the append so that commits and id allocation interleave."""
    rng = random.Random(worker)
    with engine_for(url) as engine:
        for seq in range(count):
            with transaction(engine) as session:
                EventsRepository(session).append(
                    "test.appended", source_id=f"w{worker}", data={"worker": worker, "seq": seq}
                )
                time.sleep(rng.random() * 0.002)
    return count


def claim_all(url: str, agent_id: str) -> list[str]:
    """Claim queued tests for ``agent_id`` until none is left; the ids claimed."""
    claimed: list[str] = []
    with engine_for(url) as engine:
        while True:
            with transaction(engine, immediate=True) as session:
                test = QuickTestsRepository(session).claim_next(agent_id)
            if test is None:
                return claimed
            claimed.append(test.id)


def record_runs(url: str, campaign_id: str, outcomes: list[str]) -> dict[str, int]:
    """Record each outcome; how many of each were accepted, and how many were
    refused because the counters had reached ``total_runs``."""
    accepted = {"succeeded": 0, "failed": 0, "skipped": 0, "refused": 0}
    with engine_for(url) as engine:
        for outcome in outcomes:
            try:
                with transaction(engine, immediate=True) as session:
                    CampaignsRepository(session).record_run(campaign_id, RunOutcome(outcome))
                accepted[outcome] += 1
            except CounterLimitError:
                accepted["refused"] += 1
    return accepted


def _transition_each(
    url: str,
    campaign_ids: list[str],
    action: str,
    lost: tuple[type[Exception], ...] = (InvalidTransitionError,),
) -> list[str]:
    """Apply ``CampaignsRepository.<action>`` to every campaign, one transaction each; the
    ids this process won (a race lost raises one of ``lost``)."""
    won: list[str] = []
    with engine_for(url) as engine:
        for campaign_id in campaign_ids:
            try:
                with transaction(engine, immediate=True) as session:
                    getattr(CampaignsRepository(session), action)(campaign_id)
                won.append(campaign_id)
            except lost:
                pass
    return won


def start_campaigns(url: str, campaign_ids: list[str]) -> list[str]:
    """Try to start every campaign; the ids this process won."""
    return _transition_each(url, campaign_ids, "start")


# --- KITT's web-service operations ------------------------------------------------


def register_agents(url: str, names: list[str], replace: bool) -> dict[str, str]:
    """Register every name with a token of this process's own; name -> token of
    each registration that was accepted."""
    accepted: dict[str, str] = {}
    with engine_for(url) as engine:
        for name in names:
            token = secrets.token_urlsafe(32)
            try:
                with transaction(engine, immediate=True) as session:
                    AgentsRepository(session).register(
                        name, hostname=f"host-{token[:6]}", port=8090, token=token, replace=replace
                    )
            except AlreadyExistsError:
                continue
            accepted[name] = token
    return accepted


def launch_campaigns(url: str, campaign_ids: list[str]) -> list[str]:
    """Try to launch every campaign; the ids this process won."""
    return _transition_each(url, campaign_ids, "launch")


def delete_campaigns(url: str, campaign_ids: list[str]) -> list[str]:
    """Try to delete every campaign; the ids this process deleted."""
    return _transition_each(url, campaign_ids, "delete", (InvalidTransitionError, NotFoundError))


def start_or_delete(url: str, campaign_ids: list[str], action: str) -> list[str]:
    """Start or delete every campaign, by ``action`` (one pool, two jobs); the ids won.

    A start may find the campaign deleted by the other job: that is a race lost too.
    """
    if action not in ("start", "delete"):
        raise ValueError(f"unknown action {action!r}")
    return _transition_each(url, campaign_ids, action, (InvalidTransitionError, NotFoundError))


def append_log_lines(url: str, test_id: str, worker: int, batches: int, size: int) -> list[int]:
    """Append ``batches`` calls of ``size`` lines (``w<worker>-b<batch>-l<n>``) to a
    quick test's log, one transaction each; the ids of every call, in order."""
    from karr_db.repositories.logs import QuickTestLogsRepository

    ids: list[int] = []
    with engine_for(url) as engine:
        for batch in range(batches):
            lines = [f"w{worker}-b{batch}-l{n}" for n in range(size)]
            with transaction(engine, immediate=True) as session:
                ids += QuickTestLogsRepository(session).append(test_id, lines)
    return ids
