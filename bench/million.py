"""A PostgreSQL database of a million runs, and what the common reads and writes cost there.

``python -m bench.million`` (``make bench-million``) creates a throwaway
``karr_million_*`` database on the server (``--postgres URL``, else
``$KARR_BENCH_POSTGRES_URL``, else ``$KARR_TEST_POSTGRES_URL``), migrates it and
fills it in bulk on the server itself: one ``INSERT ... SELECT`` over
``generate_series`` per table (runs with their JSONB document, hardware,
benchmarks, metrics, fingerprints, events; the foreign keys checked once per
table at the end), every metric value a function of the run, test and metric so
that the rows and the document agree. The tables are vacuumed and analysed, as
autovacuum would have left them, and the leaderboard aggregate is derived from
the rows by karr_db's own ``leaderboard_aggregate.rebuild``.

Then it times, through the public API (``Database(url).unit_of_work()``), the
aggregate leaderboard, the latest 50 runs of a model and engine, the first page
of a metric history (each within 10 ms is the target; the history also as the
1,000-point page the CLI reads), saving a generated
document of about 200 metric values and deleting a run, and reports the
database's size per table and per run. The database is dropped afterwards
unless ``--keep``; ``--reuse NAME`` times a kept database again instead of
making one (upgraded to head first, so a new revision's indexes are timed too),
and leaves it in place.

Runs have ``--tests`` benchmarks of ``--metrics`` values each (default 2 x 4:
8 metric rows a run, 8 million in all); the bench's usual documents have 207
(``bench/generator.py``), which at a million runs is ~200 million rows and
~50 GB, more than this machine's bench budget; docs/performance.md scales the
measured bytes per metric row to that shape.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from bench.generator import document
from karr_db import Database, migrations
from karr_db.dialects import for_connection
from karr_db.engine import make_engine
from karr_db.limits import PAGE_LIMIT
from karr_db.repositories.results import ResultsRepository
from tests.support.databases import Databases

POSTGRES_ENV = "KARR_BENCH_POSTGRES_URL"
MODELS = 25
ENGINES = ("vllm", "llama_cpp", "ollama", "sglang")
TESTS = ("throughput", "latency", "memory", "accuracy", "long_context", "startup")
METRICS = ("avg_tps", "p50_ms", "p99_ms", "peak_mb", "score", "ttft_ms", "tpot_ms", "errors")
#: What a read must stay within, in milliseconds (median).
READ_TARGET_MS = 10.0
#: ``metric_history``'s default page, in points.
HISTORY_PAGE: int = inspect.signature(ResultsRepository.metric_history).parameters["limit"].default
TABLES = (
    "runs",
    "benchmarks",
    "metrics",
    "hardware",
    "run_fingerprints",
    "events",
    "leaderboard_aggregates",
)


def _value(i: str, test: str, metric: str) -> str:
    """SQL for a metric value: a deterministic function of run, test and metric."""
    return (
        f"round((mod(abs(hashtext({i}::text || {test} || {metric})), 100000) / 100.0)::numeric, 2)"
    )


def populate(connection: Connection, runs: int, tests: int, metrics: int) -> dict[str, float]:
    """Fill the tables on the server; seconds per step."""
    test_names = "ARRAY[" + ", ".join(f"'{t}'" for t in TESTS[:tests]) + "]"
    metric_names = "ARRAY[" + ", ".join(f"'{m}'" for m in METRICS[:metrics]) + "]"
    run_id = "md5('run' || i)::uuid::text"
    stamp = "timestamptz '2024-01-01 00:00:00+00' + i * interval '37 seconds'"
    model = f"'model-' || mod(i, {MODELS})"
    engine = f"(ARRAY{list(ENGINES)!r})[1 + mod(i / {MODELS}, {len(ENGINES)})]".replace('"', "'")
    results = (
        "(SELECT jsonb_agg(jsonb_build_object('test_name', t, 'test_version', '1.0.0', "
        "'run_number', 1, 'passed', true, 'metrics', "
        f"(SELECT jsonb_object_agg(m, {_value('i', 't', 'm')}) FROM unnest({metric_names}) m))) "
        f"FROM unnest({test_names}) t)"
    )
    steps: list[tuple[str, str]] = [
        (
            "runs",
            "INSERT INTO runs (id, model, engine, suite_name, timestamp, passed, "
            "total_benchmarks, passed_count, failed_count, total_time_seconds, kitt_version, "
            "raw_json, created_at) "
            f"SELECT {run_id}, {model}, {engine}, 'standard', {stamp}, true, {tests}, {tests}, 0, "
            "60.0, '1.7.0', jsonb_build_object('model', "
            f"{model}, 'engine', {engine}, 'suite_name', 'standard', 'timestamp', "
            f"to_char(({stamp}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS'), "
            f"'kitt_version', '1.7.0', 'passed', true, 'results', {results}, "
            "'system_info', jsonb_build_object('gpu', jsonb_build_object('model', "
            "'NVIDIA H100', 'vram_gb', 80, 'count', 1), 'environment_type', 'native')), "
            f"{stamp} FROM generate_series(1, {runs}) i",
        ),
        (
            "hardware",
            "INSERT INTO hardware (id, run_id, gpu_model, gpu_vram_gb, gpu_count, "
            "environment_type) "
            f"SELECT i, {run_id}, 'NVIDIA H100', 80, 1, 'native' FROM generate_series(1, {runs}) i",
        ),
        (
            "benchmarks",
            "INSERT INTO benchmarks (id, run_id, test_name, test_version, run_number, passed, "
            f"timestamp, created_at) SELECT (i - 1) * {tests} + k, {run_id}, "
            f"({test_names})[k], '1.0.0', 1, true, {stamp}, {stamp} "
            f"FROM generate_series(1, {runs}) i, generate_series(1, {tests}) k",
        ),
        (
            "metrics",
            "INSERT INTO metrics (id, benchmark_id, metric_name, metric_value) "
            f"SELECT ((i - 1) * {tests} + k - 1) * {metrics} + j, (i - 1) * {tests} + k, "
            f"({metric_names})[j], "
            f"{_value('i', f'({test_names})[k]', f'({metric_names})[j]')} "
            f"FROM generate_series(1, {runs}) i, generate_series(1, {tests}) k, "
            f"generate_series(1, {metrics}) j",
        ),
        (
            "run_fingerprints",
            "INSERT INTO run_fingerprints (fingerprint, run_id) "
            f"SELECT {run_id}, {run_id} FROM generate_series(1, {runs}) i",
        ),
        (
            "events",
            "INSERT INTO events (event_type, source_id, data, created_at) "
            f"SELECT 'run.saved', {run_id}, jsonb_build_object('run_id', {run_id}), {stamp} "
            f"FROM generate_series(1, {runs}) i ORDER BY i",
        ),
    ]
    dialect = for_connection(connection)
    seconds: dict[str, float] = {}
    for table, statement in steps:
        started = time.perf_counter()
        with dialect.references_checked_at_end(connection, table):
            connection.exec_driver_sql(statement)
        connection.commit()
        seconds[table] = time.perf_counter() - started
        print(f"  {table}: {seconds[table]:.1f} s", flush=True)
    for table in ("hardware", "benchmarks", "metrics"):
        connection.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
        )
    connection.commit()
    return seconds


def derive_aggregate(url: str) -> float:
    """The leaderboard aggregate from the rows, by karr_db's own rebuild; seconds."""
    from karr_db.repositories.leaderboard_aggregate import rebuild

    engine = make_engine(url)
    try:
        started = time.perf_counter()
        with Session(engine) as session, session.begin():
            rebuild(session)
        return time.perf_counter() - started
    finally:
        engine.dispose()


def vacuum(url: str, table: str = "") -> float:
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        started = time.perf_counter()
        with engine.connect() as connection:
            connection.exec_driver_sql(f"VACUUM (ANALYZE) {table}")
        return time.perf_counter() - started
    finally:
        engine.dispose()


def sizes(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            result = {
                table: int(
                    connection.exec_driver_sql(
                        "SELECT pg_total_relation_size(CAST(%s AS regclass))", (table,)
                    ).scalar_one()
                )
                for table in TABLES
            }
            result["database"] = int(
                connection.exec_driver_sql(
                    "SELECT pg_database_size(current_database())"
                ).scalar_one()
            )
            return result
    finally:
        engine.dispose()


def _time(call: Callable[[int], Any], repeats: int, warmup: int = 3) -> dict[str, float]:
    for n in range(warmup):
        call(-1 - n)
    laps = []
    for n in range(repeats):
        started = time.perf_counter()
        call(n)
        laps.append((time.perf_counter() - started) * 1000)
    laps.sort()
    return {
        "median_ms": round(statistics.median(laps), 2),
        "p95_ms": round(laps[min(len(laps) - 1, int(len(laps) * 0.95))], 2),
        "max_ms": round(laps[-1], 2),
    }


def _fresh_seed(url: str) -> int:
    """A seed no earlier measurement of this database used: the event log only
    grows (every save and delete appends), so saves of a reused database are new."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(
                connection.exec_driver_sql("SELECT coalesce(max(id), 0) FROM events").scalar_one()
            )
    finally:
        engine.dispose()


def measure(url: str, repeats: int) -> dict[str, dict[str, float]]:
    """The operations through the public API, each unit of work on its own."""
    model, engine = "model-7", ENGINES[1]
    rng = random.Random(_fresh_seed(url))
    writes = max(3, repeats // 3)  # saves and deletes: each changes the database
    with Database(url) as db:

        def leaderboard(_: int) -> None:
            with db.unit_of_work(readonly=True) as uow:
                rows = uow.results.leaderboard(
                    "avg_tps", group_by=("model", "engine"), median=False
                )
                assert rows

        def latest(_: int) -> None:
            with db.unit_of_work(readonly=True) as uow:
                page = uow.results.list({"model": model, "engine": engine}, limit=50)
                assert page.items

        def history(_: int) -> None:
            with db.unit_of_work(readonly=True) as uow:
                page = uow.results.metric_history("avg_tps", model=model, engine=engine)
                assert page.items

        def history_longest(_: int) -> None:
            with db.unit_of_work(readonly=True) as uow:
                page = uow.results.metric_history(
                    "avg_tps", model=model, engine=engine, limit=PAGE_LIMIT
                )
                assert page.items

        def save(n: int) -> None:
            doc = document(rng, 10_000_000 + n + 100)
            with db.unit_of_work() as uow:
                assert uow.results.save(doc).created

        with db.unit_of_work(readonly=True) as uow:
            victims = [r.id for r in uow.results.list({"model": "model-3"}, limit=writes + 3).items]

        def delete(n: int) -> None:
            with db.unit_of_work() as uow:
                uow.results.delete(victims[n])

        return {
            "aggregate leaderboard (avg_tps by model, engine)": _time(leaderboard, repeats),
            "latest 50 of a model and engine": _time(latest, repeats),
            f"metric history, first page (default, {HISTORY_PAGE} points)": _time(history, repeats),
            f"metric history, a page of {PAGE_LIMIT:,} points (the CLI's)": _time(
                history_longest, repeats
            ),
            "save (a 207-value document)": _time(save, writes),
            "delete (cascade, aggregate, event)": _time(delete, writes),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.million", description=__doc__)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--tests", type=int, default=2, choices=range(1, len(TESTS) + 1))
    parser.add_argument("--metrics", type=int, default=4, choices=range(1, len(METRICS) + 1))
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(POSTGRES_ENV) or os.environ.get("KARR_TEST_POSTGRES_URL"),
        help=f"PostgreSQL server URL (default ${POSTGRES_ENV}, else $KARR_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument(
        "--reuse",
        metavar="NAME",
        help="Time the kept database NAME (karr_million_*) again: upgrade it, no populate, "
        "keep it.",
    )
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    args = parser.parse_args(argv)
    if not args.postgres:
        parser.error(f"no PostgreSQL server: pass --postgres or set {POSTGRES_ENV}")
    databases = Databases(
        "postgresql", Path(tempfile.gettempdir()), args.postgres, prefix="karr_million"
    )
    report: dict[str, Any] = {}
    if args.reuse:
        if not args.reuse.startswith("karr_million_"):
            parser.error("--reuse takes a karr_million_* database this bench kept")
        url = databases.url(args.reuse)
    else:
        url = databases.empty()
    try:
        migrations.upgrade(url)
        if args.reuse:
            vacuum(url)  # what autovacuum does after the last measurement's writes
        else:
            report["populate_seconds"], report["populate_steps"] = _populate(url, args)
        runs = _count_runs(url)
        size = sizes(url)
        timings = measure(url, args.repeats)
        report.update(
            runs=runs,
            bytes=size,
            bytes_per_run={k: round(v / runs) for k, v in size.items()},
            timings=timings,
        )
        print(f"\ndatabase: {size['database'] / 2**30:.2f} GiB, per run:")
        for table, value in report["bytes_per_run"].items():
            print(f"  {table:<24} {value:>8,} bytes")
        print("\noperation (ms)                                       median      p95      max")
        for name, figures in timings.items():
            verdict = ""
            if "leaderboard" in name or "latest" in name or "default" in name:
                verdict = "ok" if figures["median_ms"] <= READ_TARGET_MS else "OVER 10 ms"
            print(
                f"  {name:<50} {figures['median_ms']:>7} {figures['p95_ms']:>8} "
                f"{figures['max_ms']:>8}  {verdict}"
            )
        if args.json:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
    finally:
        if args.keep or args.reuse:
            print(f"kept {url}")
        else:
            databases.drop_all()
    return 0


def _populate(url: str, args: argparse.Namespace) -> tuple[float, dict[str, float]]:
    """Fill, vacuum and derive the aggregate; total seconds and seconds per step."""
    print(f"populating {args.runs:,} runs ({args.tests} x {args.metrics} metric rows each)")
    engine = make_engine(url)
    started = time.perf_counter()
    with engine.connect() as connection:
        steps = populate(connection, args.runs, args.tests, args.metrics)
    engine.dispose()
    # Statistics first: without them the rebuild's plan grows quadratically.
    steps["vacuum analyze"] = vacuum(url)
    steps["leaderboard_aggregates (rebuild)"] = derive_aggregate(url)
    steps["vacuum analyze (aggregate)"] = vacuum(url, "leaderboard_aggregates")
    seconds = time.perf_counter() - started
    print(f"populated in {seconds:.0f} s: {json.dumps(steps)}")
    return round(seconds, 1), {k: round(v, 1) for k, v in steps.items()}


def _count_runs(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.exec_driver_sql("SELECT count(*) FROM runs").scalar_one())
    finally:
        engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
