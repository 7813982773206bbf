"""Side-by-side probe of the read paths: project calls against the best raw SQL.

Not part of ``make bench`` (bench/run.py is the full harness); this is the
quick instrument of the read paths, run against databases that already
exist (populate them with ``bench.run.populate``)::

    python -m bench.reads_probe --sqlite /tmp/x.db --postgresql postgresql://../db --calls 200

Each workload alternates a project call (its own unit of work, as a user's)
and the hand-written SQL (``sqlite3`` / psycopg in autocommit, as a raw client
sends it), which side goes first alternating, parameters rotating over
model/engine pairs, metrics and runs; it prints the medians and their ratio.
``--profile WORKLOAD`` prints a cProfile of the project side instead.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sqlite3
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import psycopg

from karr_db.engine import make_engine
from karr_db.uow import UnitOfWork, transaction

METRICS = ("ttft_ms.p95", "ttft_ms.p50", "tpot_ms.p95", "itl_ms.avg")

_LATEST_COLUMNS = """r.id, r.model, r.engine, r.suite_name, r.timestamp, r.passed,
       r.total_benchmarks, r.passed_count, r.failed_count, r.total_time_seconds,
       r.kitt_version, r.created_at"""
LATEST = {
    "postgresql": f"""
SELECT p.*, h.gpu_model, h.gpu_count, h.environment_type
FROM (SELECT {_LATEST_COLUMNS} FROM runs r WHERE r.model = %s AND r.engine = %s
      ORDER BY r.timestamp DESC NULLS LAST, r.id DESC LIMIT %s) p
LEFT JOIN LATERAL (SELECT gpu_model, gpu_count, environment_type FROM hardware
                   WHERE run_id = p.id ORDER BY id LIMIT 1) h ON true
ORDER BY p.timestamp DESC NULLS LAST, p.id DESC""",
    "sqlite": f"""
SELECT p.*, h.gpu_model, h.gpu_count, h.environment_type
FROM (SELECT {_LATEST_COLUMNS} FROM runs r WHERE r.model = ? AND r.engine = ?
      ORDER BY r.timestamp DESC, r.id DESC LIMIT ?) p
LEFT JOIN hardware h ON h.id = (SELECT min(id) FROM hardware WHERE run_id = p.id)
ORDER BY p.timestamp DESC, p.id DESC""",
}
AGGREGATE = """
SELECT model, engine, sum(value_count),
       CASE WHEN sum(value_count) > 0 THEN sum(value_sum) / sum(value_count) END AS avg,
       min(value_min), max(value_max), sum(non_finite)
FROM leaderboard_aggregates WHERE metric_name = %s
GROUP BY model, engine ORDER BY avg DESC NULLS LAST, model, engine"""
HISTORY = """
SELECT r.id, r.timestamp, b.test_name, b.run_number, m.metric_value
FROM metrics m JOIN benchmarks b ON b.id = m.benchmark_id JOIN runs r ON r.id = b.run_id
WHERE m.metric_name = %s AND r.model = %s AND r.engine = %s
ORDER BY r.timestamp NULLS LAST, r.id, b.id, m.id LIMIT 1001"""
DETAIL = (
    """SELECT r.id, r.model, r.engine, r.suite_name, r.timestamp, r.passed, r.total_benchmarks,
       r.passed_count, r.failed_count, r.total_time_seconds, r.kitt_version, r.created_at,
       h.gpu_model, h.gpu_vram_gb, h.gpu_count, h.cpu_model, h.cpu_cores, h.ram_gb,
       h.environment_type, h.fingerprint
FROM runs r LEFT JOIN hardware h ON h.id = (SELECT min(id) FROM hardware WHERE run_id = r.id)
WHERE r.id = %s""",
    "SELECT id, test_name, test_version, run_number, passed, timestamp "
    "FROM benchmarks WHERE run_id = %s ORDER BY id",
    "SELECT m.benchmark_id, m.metric_name, m.metric_value FROM metrics m "
    "JOIN benchmarks b ON b.id = m.benchmark_id WHERE b.run_id = %s "
    "ORDER BY m.benchmark_id, m.id",
)
COUNT = "SELECT count(*) FROM runs WHERE passed = %s"
TAIL = (
    "SELECT id, event_type, source_id, data, created_at FROM events "
    "WHERE id > %s ORDER BY id LIMIT %s"
)


class Raw:
    """The hand-written side: one connection, autocommit, driver tuples."""

    def __init__(self, dialect: str, target: str) -> None:
        self.dialect = dialect
        if dialect == "sqlite":
            self.conn: Any = sqlite3.connect(target, isolation_level=None)
        else:
            self.conn = psycopg.connect(target, options="-c TimeZone=UTC", autocommit=True)

    def _sql(self, sql: str) -> str:
        return sql.replace("%s", "?") if self.dialect == "sqlite" else sql

    def all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return list(self.conn.execute(self._sql(sql), params).fetchall())

    def latest(self, pair: tuple[str, str]) -> list[Any]:
        return list(self.conn.execute(LATEST[self.dialect], (*pair, 51)).fetchall())

    def aggregate(self, metric: str) -> list[Any]:
        return self.all(AGGREGATE, (metric,))

    def history(self, pair: tuple[str, str]) -> list[Any]:
        return self.all(HISTORY, (METRICS[0], *pair))

    def detail(self, run_id: str) -> Any:
        return [self.all(sql, (run_id,)) for sql in DETAIL]

    def count(self, passed: bool) -> int:
        value = passed if self.dialect == "postgresql" else int(passed)
        return int(self.all(COUNT, (value,))[0][0])

    def tail(self, after: int) -> int:
        read = 0
        while True:
            rows = self.all(TAIL, (after, 1000))
            if self.dialect == "sqlite":  # psycopg decodes jsonb and timestamptz itself
                for row in rows:
                    _ = None if row[3] is None else json.loads(row[3])
                    _ = (
                        None
                        if row[4] is None
                        else datetime.fromisoformat(row[4]).replace(tzinfo=UTC)
                    )
            read += len(rows)
            if len(rows) < 1000:
                return read
            after = rows[-1][0]


class Project:
    """The layer's side: every call its own unit of work (``readonly`` as readers should)."""

    def __init__(self, url: str, readonly: bool) -> None:
        self.engine = make_engine(url)
        self.readonly = readonly

    def _uow(self) -> AbstractContextManager[UnitOfWork]:
        return transaction(self.engine, readonly=self.readonly)

    def latest(self, pair: tuple[str, str]) -> list[Any]:
        with self._uow() as uow:
            return uow.results.list({"model": pair[0], "engine": pair[1]}).items

    def aggregate(self, metric: str) -> list[Any]:
        with self._uow() as uow:
            return uow.results.leaderboard(metric, group_by=("model", "engine"), median=False)

    def history(self, pair: tuple[str, str]) -> list[Any]:
        with self._uow() as uow:
            repo = uow.results
            page = repo.metric_history(METRICS[0], model=pair[0], engine=pair[1], limit=1000)
            return page.items

    def detail(self, run_id: str) -> Any:
        with self._uow() as uow:
            return uow.results.get(run_id)

    def count(self, passed: bool) -> int:
        with self._uow() as uow:
            return uow.results.count({"passed": passed})

    def tail(self, after: int) -> int:
        read = 0
        while True:
            with self._uow() as uow:
                page = uow.events.list(after, limit=1000)
            read += len(page.items)
            if not page.has_more:
                return read
            after = page.items[-1].id

    def empty(self, _: Any) -> None:
        with self._uow() as uow:
            uow.connection.exec_driver_sql("SELECT 1").all()


def interleaved(
    project: Callable[[Any], Any], raw: Callable[[Any], Any], params: Sequence[Any], calls: int
) -> tuple[list[float], list[float]]:
    project(params[0])
    raw(params[0])
    p: list[float] = []
    r: list[float] = []
    for i in range(calls):
        arg = params[i % len(params)]
        order = ((project, p), (raw, r)) if i % 2 == 0 else ((raw, r), (project, p))
        for fn, samples in order:
            started = time.perf_counter()
            fn(arg)
            samples.append((time.perf_counter() - started) * 1000)
    return p, r


def probe(dialect: str, url: str, target: str, args: argparse.Namespace) -> None:
    raw = Raw(dialect, target)
    project = Project(url, args.readonly)
    pairs = [tuple(r) for r in raw.all("SELECT DISTINCT model, engine FROM runs", ())]
    pairs.sort()
    run_ids = [r[0] for r in raw.all("SELECT id FROM runs ORDER BY id LIMIT 40", ())]
    tail_from = max(0, raw.all("SELECT max(id) FROM events", ())[0][0] - args.tail)
    cases: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any], list[Any]]] = {
        "empty": (project.empty, lambda _: raw.all("SELECT 1", ()), [None]),
        "latest": (project.latest, raw.latest, pairs),
        "aggregate": (project.aggregate, raw.aggregate, list(METRICS)),
        "history": (project.history, raw.history, pairs),
        "detail": (project.detail, raw.detail, run_ids),
        "count": (project.count, raw.count, [True, False]),
        "tail": (project.tail, raw.tail, [tail_from]),
    }
    # Same answers (sizes) on both sides before timing anything.
    assert len(project.latest(pairs[0])) == min(50, len(raw.latest(pairs[0])))
    assert len(project.aggregate(METRICS[0])) == len(raw.aggregate(METRICS[0]))
    assert project.count(True) == raw.count(True)
    assert project.tail(tail_from) == raw.tail(tail_from)
    runs = raw.all("SELECT count(*) FROM runs", ())[0][0]
    load = os.getloadavg()[0]
    print(f"{dialect}: {runs:,} runs, {args.calls} calls each, load {load:.1f}", flush=True)
    for key in args.only.split(","):
        p_fn, r_fn, params = cases[key]
        if args.profile == key:
            profiler = cProfile.Profile()
            profiler.enable()
            for i in range(args.calls):
                p_fn(params[i % len(params)])
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
            continue
        ps, rs = interleaved(p_fn, r_fn, params, args.calls)
        p50, r50 = statistics.median(ps), statistics.median(rs)
        print(f"  {key:<10} karr {p50:8.3f} ms  sql {r50:8.3f} ms  {p50 / r50:6.2f}x", flush=True)
    print(f"  (load after: {os.getloadavg()[0]:.1f})", flush=True)
    project.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", help="path of a populated SQLite database")
    parser.add_argument("--postgresql", help="URL of a populated PostgreSQL database")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--tail", type=int, default=5000, help="events the tail reads")
    parser.add_argument("--only", default="empty,latest,aggregate,history,detail,count,tail")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--readonly", action="store_true", help="readonly units of work")
    args = parser.parse_args()
    if args.sqlite:
        probe("sqlite", f"sqlite:///{args.sqlite}", args.sqlite, args)
    if args.postgresql:
        probe("postgresql", args.postgresql, args.postgresql, args)


if __name__ == "__main__":
    main()
