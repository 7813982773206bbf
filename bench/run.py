"""The benchmark: karr_db against a raw-driver baseline, on SQLite and PostgreSQL.

``python -m bench`` (``make bench``) runs every workload at full size on both
dialects and prints one table: the project's figure, the baseline's, and
project/baseline (for throughputs baseline/project, so that above 1 always
means "the project is slower"). ``--quick`` uses smaller sizes (about a
minute); ``--scale 1000,10000,100000`` adds the scaling table.

PostgreSQL comes from ``--postgres URL`` or ``KARR_BENCH_POSTGRES_URL`` (a
server URL; throwaway ``karr_bench_*`` databases are created there and dropped
afterwards); without it only SQLite runs.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing
import os
import platform
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from bench.baseline import RawBackend, RawPostgres, RawSqlite
from bench.generator import ENGINES, LEADERBOARD_METRIC, MODELS, documents
from bench.project import Project
from karr_db import migrations
from karr_db.db import make_engine, normalize_url
from tests.support import legacy
from tests.support.databases import Databases as ThrowawayDatabases

#: Indexes beyond the reference, dropped for the one reference-schema comparison.
BEYOND_REFERENCE_INDEXES = (
    "idx_metrics_name_benchmark",
    "idx_runs_model_engine_timestamp",
    "idx_runs_passed",
    "idx_runs_model_engine_latest",
)
POSTGRES_ENV = "KARR_BENCH_POSTGRES_URL"


@dataclass(frozen=True)
class Sizes:
    """How much work each workload does."""

    saves: int
    imports: int
    query_runs: int
    query_reps: int
    events_single: int
    events_batches: int
    events_batch_size: int
    tail_events: int
    export_runs: int
    adopt_runs: int
    import_batch: int = 500

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            saves=300,
            imports=5000,
            query_runs=20_000,
            query_reps=30,
            events_single=1000,
            events_batches=20,
            events_batch_size=1000,
            tail_events=100_000,
            export_runs=20_000,
            adopt_runs=20_000,
        )

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            saves=60,
            imports=400,
            query_runs=1500,
            query_reps=7,
            events_single=150,
            events_batches=4,
            events_batch_size=500,
            tail_events=10_000,
            export_runs=800,
            adopt_runs=1000,
        )

    @classmethod
    def tiny(cls) -> Sizes:
        """For the smoke test: every code path, a few seconds."""
        return cls(
            saves=3,
            imports=6,
            query_runs=20,
            query_reps=2,
            events_single=3,
            events_batches=2,
            events_batch_size=5,
            tail_events=30,
            export_runs=10,
            adopt_runs=10,
            import_batch=4,
        )


# --- results -------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table."""

    dialect: str
    workload: str
    unit: str
    project: float
    baseline: float | None
    #: "throughput" (higher is better) or "latency"/"memory" (lower is better).
    kind: str
    target: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """How many times slower (or bigger) the project is than the baseline."""
        if self.baseline is None or self.project == 0 or self.baseline == 0:
            return None
        if self.kind == "throughput":
            return self.baseline / self.project
        return self.project / self.baseline

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        if self.kind == "memory":
            return "ok" if self.project <= self.target else "MISS"
        ratio = self.ratio
        if ratio is None:
            return ""
        return "ok" if ratio <= self.target else "MISS"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    scaling: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"  {format_row(row)}", flush=True)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_row(row: Row) -> str:
    ratio = row.ratio
    if row.target is None:
        target = ""
    elif row.kind == "memory":
        target = f"< {row.target:g} MB"
    else:
        target = f"<= {row.target:g}x"
    return (
        f"{row.dialect:<10} {row.workload:<44} {row.unit:<8} {_fmt(row.project):>10} "
        f"{_fmt(row.baseline):>10} {('-' if ratio is None else f'{ratio:.2f}x'):>7} "
        f"{target:>10} {row.verdict:>4} {row.note}"
    )


HEADER = (
    f"{'dialect':<10} {'workload':<44} {'unit':<8} {'project':>10} {'baseline':>10} "
    f"{'ratio':>7} {'target':>10} {'':>4}"
)


def print_table(report: Report) -> None:
    print()
    print(
        "ratio = project/baseline time (baseline/project for throughputs): "
        "1.00x is raw-driver speed"
    )
    print(HEADER)
    print("-" * len(HEADER))
    for row in report.rows:
        print(format_row(row))
    if report.scaling:
        print()
        print(
            "scaling (runs already stored -> save throughput, p50 latencies in ms; "
            "ratio = project/raw, interleaved)"
        )
        print(
            f"{'dialect':<10} {'runs':>8} {'save/s':>8} {'raw/s':>8} {'ratio':>6} "
            + " ".join(f"{k + ' ms':>11} {'raw':>8} {'ratio':>6}" for k in SCALE_READS)
        )
        for s in report.scaling:
            cells = " ".join(
                f"{s[k]:>11.2f} {s[k + '_raw']:>8.2f} {s[k] / s[k + '_raw']:>5.2f}x"
                for k in SCALE_READS
            )
            print(
                f"{s['dialect']:<10} {s['runs']:>8,} {s['save']:>8.1f} {s['save_raw']:>8.1f} "
                f"{s['save_raw'] / s['save']:>5.2f}x {cells}"
            )


#: The reads of the scaling table: latest 50, leaderboard from rows, from the aggregate, history.
SCALE_READS = ("latest", "lb", "agg", "history")


# --- databases ----------------------------------------------------------------------


class Databases(ThrowawayDatabases):
    """Throwaway migrated databases of one dialect (tests.support.databases), and the raw
    driver's view of them."""

    def __init__(self, dialect: str, workdir: Path, server: str | None) -> None:
        super().__init__(dialect, workdir, server, prefix="karr_bench")

    def raw_target(self, url: str) -> str:
        """What the raw driver connects with: a file path or a libpq URL."""
        parsed = make_url(url)
        if self.dialect == "sqlite":
            return str(parsed.database)
        return parsed.set(drivername="postgresql").render_as_string(hide_password=False)

    def raw(self, url: str) -> RawBackend:
        target = self.raw_target(url)
        return RawSqlite(target) if self.dialect == "sqlite" else RawPostgres(target)


def populate(databases: Databases, url: str, runs: int, *, seed: int, batch: int = 1000) -> None:
    """Fill a database with ``runs`` generated documents through the raw bulk path."""
    raw = databases.raw(url)
    try:
        start = 0
        while start < runs:
            n = min(batch, runs - start)
            raw.import_batch(documents(n, seed=seed, start=start))
            start += n
    finally:
        raw.close()
    if databases.dialect == "postgresql":
        with psycopg.connect(databases.raw_target(url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    else:
        with suppress(Exception):
            raw2 = RawSqlite(databases.raw_target(url))
            raw2.conn.execute("ANALYZE")
            raw2.close()


# --- measuring ------------------------------------------------------------------------


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _repeat(fn: Callable[[], object], times: int) -> None:
    for _ in range(times):
        fn()


def latencies(fn: Callable[[], Any], reps: int) -> tuple[float, float]:
    """(median, p95) in milliseconds after one warm-up call."""
    fn()
    samples = sorted(_timed(fn) * 1000 for _ in range(reps))
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95


def interleaved(
    project: Callable[[Any], Any], raw: Callable[[Any], Any], params: Sequence[Any], reps: int
) -> tuple[list[float], list[float]]:
    """Per-call milliseconds of both sides, calls alternating (which side goes first
    alternates too) and parameters rotating, after one warm-up call each."""
    project(params[0])
    raw(params[0])
    p: list[float] = []
    r: list[float] = []
    for i in range(reps):
        arg = params[i % len(params)]
        first, second = ((project, p), (raw, r)) if i % 2 == 0 else ((raw, r), (project, p))
        for fn, samples in (first, second):
            started = time.perf_counter()
            fn(arg)
            samples.append((time.perf_counter() - started) * 1000)
    return p, r


def p50_p95(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[
        min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))
    ]


@contextmanager
def profiled(name: str | None, wanted: set[str]) -> Iterator[None]:
    """cProfile the block when ``--profile`` names it; top functions printed."""
    if name is None or not (wanted & {name, "all"}):
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        print(f"\n--- profile: {name} ---")
        stats = pstats.Stats(profiler).sort_stats("cumulative")
        stats.print_stats(30)
        stats.sort_stats("tottime").print_stats(25)


class Bench:
    """Runs the workloads of one dialect."""

    def __init__(
        self, databases: Databases, sizes: Sizes, report: Report, profile: set[str]
    ) -> None:
        self.db = databases
        self.dialect = databases.dialect
        self.sizes = sizes
        self.report = report
        self.profile = profile

    def row(
        self,
        workload: str,
        unit: str,
        project: float,
        baseline: float | None,
        kind: str,
        target: float | None = None,
        note: str = "",
    ) -> None:
        self.report.add(Row(self.dialect, workload, unit, project, baseline, kind, target, note))

    def project(self, url: str) -> Project:
        return Project(make_engine(url))

    # writes

    def save(self) -> None:
        n = self.sizes.saves
        docs = list(documents(n, seed=1))
        p_url, r_url = self.db.migrated(), self.db.migrated()
        project, raw = self.project(p_url), self.db.raw(r_url)
        with profiled("save", self.profile):
            ps, rs = interleaved(project.save, raw.save, docs, n)
        p, r = sum(ps[1:]) / 1000, sum(rs[1:]) / 1000
        project.close()
        raw.close()
        self.db.drop(p_url)
        self.db.drop(r_url)
        self.row(
            "save 1 document/transaction", "runs/s", (n - 1) / p, (n - 1) / r, "throughput", 2.0
        )

    def import_(self) -> None:
        n = self.sizes.imports
        files = Path(tempfile.mkdtemp(dir=self.db.workdir, prefix="import-"))
        paths = []
        for i, doc in enumerate(documents(n, seed=2)):
            path = files / f"{i:06d}" / "metrics.json"
            path.parent.mkdir()
            path.write_text(json.dumps(doc, indent=2))
            paths.append(path)
        p_url, r_url = self.db.migrated(), self.db.migrated()
        project, raw = self.project(p_url), self.db.raw(r_url)
        with profiled("import", self.profile):
            p = _timed(lambda: project.import_files([files]))
        batch = self.sizes.import_batch

        def raw_import() -> None:
            for start in range(0, len(paths), batch):
                docs = [json.loads(p.read_bytes()) for p in paths[start : start + batch]]
                raw.import_batch(docs)

        r = _timed(raw_import)
        project.close()
        raw.close()
        self.db.drop(p_url)
        self.db.drop(r_url)
        shutil.rmtree(files)
        self.row(f"import {n:,} documents (files)", "runs/s", n / p, n / r, "throughput", 2.0)

    # queries

    def queries(self) -> None:
        n, reps = self.sizes.query_runs, self.sizes.query_reps
        url = self.db.migrated()
        started = time.perf_counter()
        populate(self.db, url, n, seed=3)
        print(f"  (populated {n:,} runs in {time.perf_counter() - started:.1f} s)", flush=True)
        project, raw = self.project(url), self.db.raw(url)
        pairs = [(m, e) for m in MODELS for e in ENGINES]
        metrics = [LEADERBOARD_METRIC, "ttft_ms.p50", "tpot_ms.p95", "itl_ms.avg"]
        run_ids = [row[0] for m, e in pairs[:10] for row in raw.latest(m, e, 3)]
        cases: list[tuple[str, str, Callable[[Any], Any], Callable[[Any], Any], list[Any]]] = [
            (
                "latest",
                "latest 50 runs of a model+engine",
                lambda pe: project.latest(*pe),
                lambda pe: raw.latest(*pe),
                pairs,
            ),
            (
                "leaderboard",
                "leaderboard with median, from rows",
                project.leaderboard,
                raw.leaderboard,
                metrics,
            ),
            (
                "aggregate",
                "leaderboard count/avg/min/max (aggregate)",
                project.leaderboard_fast,
                raw.leaderboard_fast,
                metrics,
            ),
            (
                "metric",
                "metric history of a model/engine",
                lambda pe: project.history(LEADERBOARD_METRIC, *pe),
                lambda pe: raw.history(LEADERBOARD_METRIC, *pe),
                pairs,
            ),
            ("full", "full detail of one run", project.detail, raw.detail, run_ids),
            ("count", "count by passed", project.count_passed, raw.count_passed, [True, False]),
        ]
        for m, e in pairs[:3]:
            check_same_answers(project, raw, m, e, run_ids[0])
        for key, name, p_fn, r_fn, params in cases:
            with profiled(key, self.profile):
                ps, rs = interleaved(p_fn, r_fn, params, reps)
            (p50, p95), (r50, r95) = p50_p95(ps), p50_p95(rs)
            self.row(f"{name} (p50)", "ms", p50, r50, "latency", 1.5, f"@{n:,} runs")
            self.row(f"{name} (p95)", "ms", p95, r95, "latency", None)
        project.close()
        raw.close()
        self.reference_schema(url, cases, n)
        self.export(url, n)
        self.db.drop(url)

    def reference_schema(self, url: str, cases: list[Any], n: int) -> None:
        """The same hand-written SQL with and without the indexes beyond the reference
        (0004 and 0009), interleaved on two copies of one database."""
        bare = self.db.copy(url)
        with_indexes, without = self.db.raw(url), self.db.raw(bare)
        conn: Any = without.conn  # type: ignore[attr-defined]
        for name in BEYOND_REFERENCE_INDEXES:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        conn.execute("ANALYZE")
        for key, name, _p, _r, params in cases:
            if key not in ("latest", "leaderboard", "metric", "full", "count"):
                continue
            ref, ours = interleaved(
                raw_call(without, key), raw_call(with_indexes, key), params, self.sizes.query_reps
            )
            self.row(
                f"SQL {name}: reference schema / ours",
                "ms",
                p50_p95(ref)[0],
                p50_p95(ours)[0],
                "latency",
                note=f"@{n:,} runs (raw SQL both sides)",
            )
        with_indexes.close()
        without.close()
        self.db.drop(bare)

    # events

    def events(self) -> None:
        s = self.sizes
        p_url, r_url = self.db.migrated(), self.db.migrated()
        project, raw = self.project(p_url), self.db.raw(r_url)

        with profiled("events", self.profile):
            ps, rs = interleaved(
                lambda _: project.append_event(),
                lambda _: raw.append_events(1),
                [None],
                s.events_single,
            )
        p, r = sum(ps) / 1000, sum(rs) / 1000
        self.row(
            "events: append 1/transaction",
            "events/s",
            s.events_single / p,
            s.events_single / r,
            "throughput",
        )
        total = s.events_batches * s.events_batch_size
        p = _timed(
            lambda: _repeat(lambda: project.append_events(s.events_batch_size), s.events_batches)
        )
        r = _timed(
            lambda: _repeat(lambda: raw.append_events(s.events_batch_size), s.events_batches)
        )
        self.row(
            f"events: append in batches of {s.events_batch_size:,}",
            "events/s",
            total / p,
            total / r,
            "throughput",
        )
        # Top up one log to the tail size; both readers read that same log.
        have = s.events_single + total
        while have < s.tail_events:
            step = min(10_000, s.tail_events - have)
            raw.append_events(step)
            have += step
        project.close()
        project = self.project(r_url)
        with profiled("tail", self.profile):
            ps, rs = interleaved(project.tail, raw.tail, [0], 2)
        p, r = min(ps) / 1000, min(rs) / 1000
        self.row(
            f"events: tail reader catching up {have:,}",
            "events/s",
            have / p,
            have / r,
            "throughput",
            1.5,
        )
        project.close()
        raw.close()
        self.db.drop(p_url)
        self.db.drop(r_url)

    # export

    def export(self, url: str, n: int) -> None:
        """Export the query database's runs: time, and peak RSS growth in a child process."""
        results = {}
        for side in ("project", "baseline"):
            target = Path(tempfile.mkdtemp(dir=self.db.workdir, prefix=f"export-{side}-"))
            target_url = url if side == "project" else self.db.raw_target(url)
            results[side] = export_in_child(side, self.dialect, target_url, target)
            shutil.rmtree(target)
        p, r = results["project"], results["baseline"]
        self.row(
            f"export {n:,} runs streamed",
            "runs/s",
            n / p["seconds"],
            n / r["seconds"],
            "throughput",
        )
        self.row(
            f"export {n:,} runs: peak RSS growth", "MB", p["peak_mb"], r["peak_mb"], "memory", 50.0
        )

    # migrations

    def migrations(self) -> None:
        url = self.db.empty()
        statements = capture(url, self.profile)
        p = statements.seconds
        replay_url = self.db.empty()
        r = _timed(lambda: replay(self.db, replay_url, statements.statements))
        self.row(
            "alembic upgrade head, empty database",
            "ms",
            p * 1000,
            r * 1000,
            "latency",
            note=f"{len(statements.statements)} statements",
        )
        self.db.drop(url)
        self.db.drop(replay_url)

        n = self.sizes.adopt_runs
        legacy = self.db.empty()
        started = time.perf_counter()
        build_legacy_v1(self.db, legacy, n)
        print(
            f"  (built a {n:,}-run schema-1 database in {time.perf_counter() - started:.1f} s)",
            flush=True,
        )
        copy = self.db.copy(legacy)
        statements = capture(legacy, self.profile, name="adopt")
        r = _timed(lambda: replay(self.db, copy, statements.statements))
        self.row(
            f"adopt + upgrade a {n:,}-run schema-1 database",
            "s",
            statements.seconds,
            r,
            "latency",
            note=f"{len(statements.statements)} statements",
        )
        self.db.drop(legacy)
        self.db.drop(copy)

    def all(self, only: set[str]) -> None:
        steps: list[tuple[str, Callable[[], None]]] = [
            ("save", self.save),
            ("import", self.import_),
            ("queries", self.queries),
            ("events", self.events),
            ("migrations", self.migrations),
        ]
        for name, step in steps:
            if only and name not in only:
                continue
            print(f"[{self.dialect}] {name}", flush=True)
            step()

    def scaling(self, sizes: Sequence[int]) -> None:
        saves = max(20, self.sizes.saves // 2)
        docs = list(documents(saves, seed=9))
        for n in sizes:
            print(f"[{self.dialect}] scaling at {n:,} runs", flush=True)
            entry = self._scale_point(n, docs)
            self.report.scaling.append(entry)
            print(f"  {entry}", flush=True)

    def _scale_point(self, n: int, docs: list[dict[str, Any]]) -> dict[str, Any]:
        """Save throughput and leaderboard latency with ``n`` runs already stored."""
        started = time.perf_counter()
        base = self.db.migrated()
        populate(self.db, base, n, seed=5, batch=2000)
        print(f"  (populated in {time.perf_counter() - started:.1f} s)", flush=True)
        other = self.db.copy(base)
        project, raw = self.project(base), self.db.raw(other)
        pairs = [(m, e) for m in MODELS for e in ENGINES]
        metrics = [LEADERBOARD_METRIC, "ttft_ms.p50", "tpot_ms.p95"]
        reads: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any], list[Any]]] = {
            "latest": (lambda pe: project.latest(*pe), lambda pe: raw.latest(*pe), pairs),
            "lb": (project.leaderboard, raw.leaderboard, metrics),
            "agg": (project.leaderboard_fast, raw.leaderboard_fast, metrics),
            "history": (
                lambda pe: project.history(LEADERBOARD_METRIC, *pe),
                lambda pe: raw.history(LEADERBOARD_METRIC, *pe),
                pairs,
            ),
        }
        entry: dict[str, Any] = {"dialect": self.dialect, "runs": n}
        for key, (p_fn, r_fn, params) in reads.items():
            reps = 7 if key == "lb" and n >= 100_000 else 15
            ps, rs = interleaved(p_fn, r_fn, params, reps)
            entry[key], entry[f"{key}_raw"] = p50_p95(ps)[0], p50_p95(rs)[0]
        ps, rs = interleaved(project.save, raw.save, docs, len(docs))
        entry["save"], entry["save_raw"] = (
            len(docs) / (sum(ps) / 1000),
            len(docs) / (sum(rs) / 1000),
        )
        project.close()
        raw.close()
        self.db.drop(base)
        self.db.drop(other)
        return entry


def raw_call(backend: RawBackend, key: str) -> Callable[[Any], Any]:
    """The baseline's side of a query workload, taking that workload's rotated parameter."""
    if key == "latest":
        return lambda pe: backend.latest(*pe)
    if key == "metric":
        return lambda pe: backend.history(LEADERBOARD_METRIC, *pe)
    methods: dict[str, Callable[[Any], Any]] = {"leaderboard": backend.leaderboard}
    methods |= {"full": backend.detail, "count": backend.count_passed}
    return methods[key]


def check_same_answers(
    project: Project, raw: RawBackend, model: str, engine: str, run_id: str
) -> None:
    """The baseline must answer the same questions: compare both sides' results once."""
    latest = [r.id for r in project.latest(model, engine)]
    problems = []
    if latest != [r[0] for r in raw.latest(model, engine)]:
        problems.append("latest runs differ")
    board = project.leaderboard(LEADERBOARD_METRIC)
    raw_board = raw.leaderboard(LEADERBOARD_METRIC)
    if [(b.group["model"], b.group["engine"], b.count) for b in board] != [
        (r[0], r[1], r[2]) for r in raw_board
    ]:
        problems.append("leaderboards differ")
    for b, r in zip(board, raw_board, strict=False):
        if b.median is None or abs(b.median - r[6]) > 1e-6 * max(1.0, abs(r[6])):
            problems.append(f"leaderboard medians differ: {b.median} != {r[6]}")
            break
    if len(project.history(LEADERBOARD_METRIC, model, engine)) != len(
        raw.history(LEADERBOARD_METRIC, model, engine)
    ):
        problems.append("metric histories differ")
    detail = project.detail(run_id)
    _, benches, metrics = raw.detail(run_id)
    if (len(detail.benchmarks), sum(len(b.metrics) for b in detail.benchmarks)) != (
        len(benches),
        len(metrics),
    ):
        problems.append("run details differ")
    if project.count_passed(True) != raw.count_passed(True):
        problems.append("counts differ")
    fast = project.leaderboard_fast(LEADERBOARD_METRIC)
    raw_fast = raw.leaderboard_fast(LEADERBOARD_METRIC)
    if [(b.group["model"], b.group["engine"], b.count, b.min, b.max) for b in fast] != [
        (r[0], r[1], r[2], r[4], r[5]) for r in raw_fast
    ]:
        problems.append("aggregate leaderboards differ")
    # ... and the aggregate agrees with the rows (averages to rounding).
    for b, r in zip(fast, raw_board, strict=False):
        if b.count != r[2] or abs((b.avg or 0) - r[3]) > 1e-9 * max(1.0, abs(r[3])):
            problems.append(f"aggregate and rows differ: {b} != {r}")
            break
    if problems:
        raise RuntimeError("project and baseline disagree: " + "; ".join(problems))


# --- migrations: capture the project's statements, replay them raw ---------------------


@dataclass
class Captured:
    seconds: float
    statements: list[tuple[str, Any, bool]]


def capture(url: str, profile: set[str], name: str = "upgrade") -> Captured:
    """Run the project's upgrade, recording every statement it sends to the driver."""
    engine = make_engine(url)
    recorded: list[tuple[str, Any, bool]] = []

    def record(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        recorded.append((statement, params, many))

    event.listen(engine, "before_cursor_execute", record)
    with profiled(name, profile):
        seconds = _timed(lambda: migrations.upgrade(engine))
    engine.dispose()
    return Captured(seconds, recorded)


def replay(databases: Databases, url: str, statements: list[tuple[str, Any, bool]]) -> None:
    """The baseline of a migration: the same statements through the raw driver, one transaction."""
    target = databases.raw_target(url)
    work = [s for s in statements if not s[0].lstrip().upper().startswith("BEGIN")]
    if databases.dialect == "sqlite":
        sconn = RawSqlite(target).conn
        # As the migration transaction has them: with foreign keys on, the table
        # rebuilds of adoption cascade-delete the children (the replay used to
        # lose every benchmark row silently; derived metrics then failed on it).
        sconn.execute("PRAGMA foreign_keys = OFF")
        sconn.execute("BEGIN IMMEDIATE")
        for statement, params, many in work:
            if many:
                sconn.executemany(statement, params)
            else:
                sconn.execute(statement, params or ()).fetchall()
        sconn.execute("COMMIT")
        sconn.close()
        return
    with (
        psycopg.connect(target, options="-c TimeZone=UTC") as pconn,
        pconn.transaction(),
        pconn.cursor() as cur,
    ):
        for statement, params, many in work:
            if many:
                cur.executemany(statement, params)
            else:
                # SQLAlchemy doubles % in compiled statements and passes {}:
                # keep that dict so that psycopg undoubles them again.
                cur.execute(statement, params if params or isinstance(params, dict) else None)
                with suppress(psycopg.ProgrammingError):
                    cur.fetchall()


def build_legacy_v1(databases: Databases, url: str, runs: int) -> None:
    """A schema-1 database of the earlier system holding ``runs`` generated runs (raw inserts)."""
    pg = databases.dialect == "postgresql"
    ddl = legacy.legacy_ddl(databases.dialect, 1)
    run_rows, bench_rows, metric_rows, hw_rows = [], [], [], []
    bench_id = 0
    for i, doc in enumerate(documents(runs, seed=7)):
        run_id = f"legacy-{i:07d}"
        run_rows.append(
            (
                run_id,
                doc["model"],
                doc["engine"],
                doc["suite_name"],
                doc["timestamp"],
                int(doc["passed"]),
                doc["total_benchmarks"],
                doc["passed_count"],
                doc["failed_count"],
                doc["total_time_seconds"],
                doc["kitt_version"],
                json.dumps(doc),
                "2026-02-12 10:00:01",
            )
        )
        for result in doc["results"]:
            bench_id += 1
            passed = bool(result["passed"]) if pg else int(result["passed"])
            bench_rows.append(
                (
                    bench_id,
                    run_id,
                    result["test_name"],
                    result["test_version"],
                    result["run_number"],
                    passed,
                    result["timestamp"],
                    "2026-02-12 10:00:02",
                )
            )
            for key, value in result["metrics"].items():  # the earlier system kept top level only
                if isinstance(value, int | float) and not isinstance(value, bool):
                    metric_rows.append((bench_id, key, value))
        gpu, info = doc["system_info"]["gpu"], doc["system_info"]
        hw_rows.append(
            (
                run_id,
                gpu["model"],
                gpu["vram_gb"],
                gpu["count"],
                info["cpu"]["model"],
                info["cpu"]["cores"],
                info["ram_gb"],
                info["environment_type"],
                info["fingerprint"],
            )
        )
    inserts: list[tuple[str, str, list[tuple[Any, ...]]]] = [
        (
            "runs",
            "id, model, engine, suite_name, timestamp, passed, total_benchmarks, "
            "passed_count, failed_count, total_time_seconds, kitt_version, raw_json, created_at",
            run_rows,
        ),
        (
            "benchmarks",
            "id, run_id, test_name, test_version, run_number, passed, timestamp, created_at",
            bench_rows,
        ),
        ("metrics", "benchmark_id, metric_name, metric_value", metric_rows),
        (
            "hardware",
            "run_id, gpu_model, gpu_vram_gb, gpu_count, cpu_model, cpu_cores, ram_gb, "
            "environment_type, fingerprint",
            hw_rows,
        ),
    ]
    target = databases.raw_target(url)
    if not pg:
        conn = RawSqlite(target).conn
        conn.execute("BEGIN IMMEDIATE")
        for statement in ddl:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (1, '2025-01-01 08:00:00')"
        )
        for table, columns, rows in inserts:
            marks = ",".join("?" * len(rows[0]))
            conn.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
        conn.execute("COMMIT")
        conn.close()
        return
    with psycopg.connect(target) as pconn, pconn.transaction(), pconn.cursor() as cur:
        for statement in ddl:
            cur.execute(statement)
        cur.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (1, '2025-01-01 08:00:00')"
        )
        for table, columns, rows in inserts:
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        cur.execute("SELECT setval('benchmarks_id_seq', %s)", (bench_id,))
    with psycopg.connect(target, autocommit=True) as pconn:
        pconn.execute("VACUUM ANALYZE")


# --- export in a child process (peak RSS growth) ------------------------------------------


def _rss_kb(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def _export_child(side: str, dialect: str, target: str, directory: str, out: Any) -> None:
    if side == "project":
        project = Project(make_engine(target))
        project.count_passed(True)  # connect and warm up before the baseline reading
        run: Callable[[], int] = lambda: project.export(Path(directory))  # noqa: E731
    else:
        raw = RawSqlite(target) if dialect == "sqlite" else RawPostgres(target)
        raw.count_passed(True)
        run = lambda: raw.export(Path(directory))  # noqa: E731
    with suppress(OSError):  # reset the peak (VmHWM) to the current RSS
        Path("/proc/self/clear_refs").write_text("5")
    before = _rss_kb("VmRSS")
    started = time.perf_counter()
    written = run()
    seconds = time.perf_counter() - started
    peak = _rss_kb("VmHWM")
    out.put({"seconds": seconds, "peak_mb": max(0, peak - before) / 1024, "written": written})


def export_in_child(side: str, dialect: str, target: str, directory: Path) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(
        target=_export_child, args=(side, dialect, target, str(directory), queue)
    )
    child.start()
    while True:
        with suppress(Exception):
            result: dict[str, Any] = queue.get(timeout=1)
            child.join()
            return result
        if not child.is_alive():
            raise RuntimeError(f"the {side} export child died (exit code {child.exitcode})")


# --- entry point ------------------------------------------------------------------------


def machine() -> str:
    model = ""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    return (
        f"{os.cpu_count()} cores ({model}){mem}; Python {platform.python_version()}; "
        f"SQLAlchemy {sa.__version__}; psycopg {psycopg.__version__}; "
        f"SQLite {__import__('sqlite3').sqlite_version}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dialect", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(POSTGRES_ENV) or os.environ.get("KARR_TEST_POSTGRES_URL"),
        help=f"PostgreSQL server URL (default ${POSTGRES_ENV}, else $KARR_TEST_POSTGRES_URL)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated steps: save,import,queries,events,migrations "
        "('scaling' alone: only the scaling table)",
    )
    parser.add_argument(
        "--scale",
        default="",
        help="comma-separated run counts for the scaling table, e.g. 1000,10000",
    )
    parser.add_argument(
        "--profile",
        default="",
        help="cProfile these workloads' project side (save, import, latest, "
        "leaderboard, metric, full, count, events, tail, upgrade, adopt, all)",
    )
    parser.add_argument("--workdir", default=None, help="where SQLite files and exports go")
    args = parser.parse_args(argv)

    sizes = Sizes.tiny() if args.tiny else Sizes.quick() if args.quick else Sizes.full()
    dialects = ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]
    server = (
        normalize_url(args.postgres)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
        if args.postgres
        else None
    )
    if "postgresql" in dialects and server is None:
        if args.dialect == "postgresql":
            parser.error(f"PostgreSQL needs --postgres URL or ${POSTGRES_ENV}")
        print(f"no PostgreSQL (--postgres or ${POSTGRES_ENV}): SQLite only", file=sys.stderr)
        dialects = ["sqlite"]
    only = {s for s in args.only.split(",") if s}
    scale = [int(s) for s in args.scale.split(",") if s]
    profile = {s for s in args.profile.split(",") if s}

    print(f"machine: {machine()}")
    if server:
        with psycopg.connect(server) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        print(
            f"PostgreSQL {version[0] if version else '?'} at "
            f"{make_url(server).render_as_string(hide_password=True)}"
        )
    report = Report()
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="karr-bench-", dir=args.workdir))
    try:
        for dialect in dialects:
            databases = Databases(dialect, workdir, server)
            try:
                bench = Bench(databases, sizes, report, profile)
                bench.all(only)
                if scale:
                    bench.scaling(scale)
            finally:
                databases.drop_all()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(report)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0
