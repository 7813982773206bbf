"""Documents, store checks and worker functions of the reliability tests.

Workers are top-level functions taking the database URL, so ``spawn`` children
can import them; each builds its own engine, stops at a deadline or an
operation count (whichever comes first) and reports what it did, so that the
parent can compare the database against the sum of the reports.
"""

from __future__ import annotations

import copy
import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from karr_db.documents import load_document
from karr_db.errors import TransientStorageError
from karr_db.models import Benchmark, Event, Hardware, Metric, Run
from karr_db.repositories.campaigns import RunOutcome
from karr_db.uow import UnitOfWork, run_transaction, transaction
from tests.support.workers import engine_for

#: ``make soak`` sets this; 0 means the short CI run.
SOAK_SECONDS = float(os.environ.get("KARR_SOAK_SECONDS") or 0)
#: Hard limit on waiting for any worker process, in seconds.
WORKER_TIMEOUT = 120.0 + SOAK_SECONDS


def budget(ci_seconds: float, soak_share: float) -> float:
    """Seconds a test may spend: its CI figure, or its share of the soak."""
    return max(ci_seconds, SOAK_SECONDS * soak_share)


# --- documents -------------------------------------------------------------------


def load_samples(samples_dir: str | Path) -> list[dict[str, Any]]:
    paths = sorted(Path(samples_dir).glob("*.json"))
    assert paths, f"no sample documents in {samples_dir}"
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


def variant(samples: list[dict[str, Any]], key: str, *, extra_metrics: int = 0) -> dict[str, Any]:
    """A distinct, realistic document: a sample with its own model name (so its own run id)."""
    rng = random.Random(key)
    document = copy.deepcopy(samples[rng.randrange(len(samples))])
    document["model"] = f"{document.get('model', 'model')}-{key}"
    for result in document.get("results") or []:
        metrics = result.setdefault("metrics", {})
        for name in list(metrics)[:3]:
            if isinstance(metrics[name], int | float) and not isinstance(metrics[name], bool):
                metrics[name] = round(rng.uniform(0.1, 1000.0), 3)
        for i in range(extra_metrics):
            metrics[f"extra_{i}"] = rng.random()
    return document


def write_tree(documents: list[dict[str, Any]], root: Path) -> list[Path]:
    """KITT's layout: ``<root>/<n>/metrics.json``."""
    paths = []
    for n, document in enumerate(documents):
        path = root / f"{n:05d}" / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document), encoding="utf-8")
        paths.append(path)
    return paths


# --- checking a store --------------------------------------------------------------


@dataclass
class StoreCheck:
    """What :func:`check_store` verified."""

    runs: int
    benchmarks: int
    metrics: int
    hardware: int
    events: int

    @property
    def rows(self) -> int:
        return self.runs + self.benchmarks + self.metrics + self.hardware + self.events


def check_store(engine: Engine) -> StoreCheck:
    """Every run complete against its own ``raw_json``, no orphans, one ``run.saved`` a life.

    Complete means: the run id is the document's, one benchmark row per result
    (same test names), exactly the document's flattened metric names per
    benchmark, and a hardware row if and only if the document has system_info.
    """
    with transaction(engine) as uow:
        benchmarks: dict[str, list[tuple[int, str | None]]] = {}
        for bid, run_id, name in uow.session.execute(
            sa.select(Benchmark.id, Benchmark.run_id, Benchmark.test_name).order_by(Benchmark.id)
        ):
            assert run_id is not None, f"benchmark {bid} without a run"
            benchmarks.setdefault(run_id, []).append((bid, name))
        metrics: dict[int, list[str]] = {}
        for owner, name in uow.session.execute(sa.select(Metric.benchmark_id, Metric.metric_name)):
            assert owner is not None, f"metric {name} without a benchmark"
            assert name is not None, f"a metric of benchmark {owner} without a name"
            metrics.setdefault(owner, []).append(name)
        hardware = Counter(uow.session.scalars(sa.select(Hardware.run_id)))
        saved_events = Counter(
            uow.session.scalars(sa.select(Event.source_id).where(Event.event_type == "run.saved"))
        )
        deleted = Counter(
            uow.session.scalars(sa.select(Event.source_id).where(Event.event_type == "run.deleted"))
        )
        runs = uow.session.execute(sa.select(Run.id, Run.raw_json)).all()
        events = uow.session.scalar(sa.select(sa.func.count()).select_from(Event)) or 0

        run_ids = {run_id for run_id, _ in runs}
        assert not set(benchmarks) - run_ids, "benchmarks of a missing run"
        benchmark_ids = {bid for rows in benchmarks.values() for bid, _ in rows}
        assert not set(metrics) - benchmark_ids, "metrics of a missing benchmark"
        assert not set(hardware) - run_ids, "hardware of a missing run"
        assert not set(saved_events) - run_ids - set(deleted), "a run.saved event of a missing run"

        metric_count = 0
        for run_id, raw in runs:
            doc = load_document(raw)
            assert doc.run_id == run_id, f"run {run_id} does not match its document"
            results = doc.model.results or []
            rows = benchmarks.get(run_id, [])
            assert [name for _, name in rows] == [r.test_name for r in results], run_id
            for (bid, _), flat in zip(rows, doc.metrics, strict=True):
                assert sorted(metrics.get(bid, [])) == sorted(f.name for f in flat), run_id
                metric_count += len(flat)
            assert hardware[run_id] == (1 if doc.model.system_info is not None else 0), run_id
            # A run deleted and saved again (a document several writers save) has one
            # run.saved more than its run.deleted events; any other count is a lost or
            # doubled event.
            assert saved_events[run_id] == deleted[run_id] + 1, (
                f"run {run_id} has {saved_events[run_id]} run.saved and "
                f"{deleted[run_id]} run.deleted events"
            )
        return StoreCheck(
            runs=len(runs),
            benchmarks=len(benchmark_ids),
            metrics=metric_count,
            hardware=sum(hardware.values()),
            events=int(events),
        )


# --- workers -------------------------------------------------------------------------


def sqlite_writer(
    url: str, worker: int, samples_dir: str, seconds: float, max_ops: int
) -> dict[str, Any]:
    """Save distinct runs, a few runs every writer also saves, and events, in DEFERRED
    transactions (read first, write later: the case SQLite refuses with "database is
    locked" when another writer committed in between) through :func:`run_transaction`."""
    samples = load_samples(samples_dir)
    report: dict[str, Any] = {"created": [], "events": 0, "retries": 0, "ops": 0}

    def count_retry(_attempt: int, _error: TransientStorageError) -> None:
        report["retries"] += 1

    deadline = time.monotonic() + seconds
    with engine_for(url) as engine:
        for op in range(max_ops):
            if time.monotonic() >= deadline:
                break
            if op % 3 == 2:
                run_transaction(
                    engine,
                    lambda uow, op=op: uow.events.append(  # type: ignore[misc]
                        "test.appended", source_id=f"w{worker}", data={"op": op}
                    ),
                    on_retry=count_retry,
                )
                report["events"] += 1
            else:
                key = f"shared-{op // 10}" if op % 10 == 0 else f"w{worker}-{op}"
                document = variant(samples, key)
                saved = run_transaction(
                    engine,
                    lambda uow, d=document: uow.results.save(d),  # type: ignore[misc]
                    idempotent=True,
                    on_retry=count_retry,
                )
                if saved.created:
                    report["created"].append(saved.run.id)
            report["ops"] += 1
    return report


def sqlite_reader(url: str, seconds: float, max_ops: int) -> dict[str, int]:
    """Count, list and tail the log while writers write; what one sees never shrinks."""
    reads = 0
    last_runs = last_event = 0
    deadline = time.monotonic() + seconds
    with engine_for(url) as engine:
        for _ in range(max_ops):
            if time.monotonic() >= deadline:
                break
            with transaction(engine) as uow:
                results = uow.results
                runs = results.count()
                results.list(limit=20)
                page = uow.events.list(last_event, limit=200)
            assert runs >= last_runs, "a reader saw the run count go down"
            last_runs = runs
            if page.items:
                last_event = page.items[-1].id
            reads += 1
    return {"reads": reads}


def postgres_worker(
    url: str,
    worker: int,
    samples_dir: str,
    agent_id: str,
    campaign_id: str,
    ops: int,
) -> dict[str, Any]:
    """A mix of the busiest writes: saves (some of the same document as every other
    worker), claims, and campaign counters, each unit of work through the retry helper."""
    samples = load_samples(samples_dir)
    rng = random.Random(worker)
    report: dict[str, Any] = {
        "created": [],
        "claimed": [],
        "recorded": Counter(),
        "retries": 0,
        "ops": 0,
    }

    def count_retry(_attempt: int, _error: TransientStorageError) -> None:
        report["retries"] += 1

    with engine_for(url) as engine:
        for op in range(ops):
            kind = op % 4
            if kind == 0:
                key = f"shared-{op // 8}" if op % 8 == 0 else f"w{worker}-{op}"
                document = variant(samples, key)
                saved = run_transaction(
                    engine,
                    lambda uow, d=document: uow.results.save(d),  # type: ignore[misc]
                    idempotent=True,
                    on_retry=count_retry,
                )
                if saved.created:
                    report["created"].append(saved.run.id)
            elif kind == 1:
                claimed = run_transaction(
                    engine,
                    lambda uow: uow.quick_tests.claim_next(agent_id),
                    on_retry=count_retry,
                )
                if claimed is not None:
                    report["claimed"].append(claimed.id)
            else:
                # A finished quick test: save its result and count it in one transaction.
                outcome = rng.choice(list(RunOutcome))
                document = variant(samples, f"w{worker}-{op}-done")

                def finish(
                    uow: UnitOfWork, d: dict[str, Any] = document, o: RunOutcome = outcome
                ) -> str:
                    uow.events.lock_log()
                    saved = uow.results.save(d)
                    uow.campaigns.record_run(campaign_id, o)
                    return saved.run.id

                report["created"].append(run_transaction(engine, finish, on_retry=count_retry))
                report["recorded"][outcome.value] += 1
            report["ops"] += 1
    report["recorded"] = dict(report["recorded"])
    return report
