"""Migrations: the project's upgrade and adoption, against the same statements replayed raw.

The baseline of a migration is the very statements the project sent
(recorded from the driver), replayed through the raw driver in one
transaction: what the migration framework costs around its SQL.
"""

from __future__ import annotations

import json
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event

from bench.backends.raw_sqlite import RawSqlite
from bench.databases import Databases
from bench.generator import documents
from bench.harness import profiled, timed
from bench.workloads import Context
from karr_db import migrations as karr_migrations
from karr_db.engine import make_engine
from tests.support import legacy

ROOT = Path(__file__).resolve().parent.parent.parent


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
        seconds = timed(lambda: karr_migrations.upgrade(engine))
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


def migrations(ctx: Context) -> None:
    """An empty upgrade, and the adoption of a schema-1 database; replayed raw."""
    url = ctx.db.empty()
    statements = capture(url, ctx.profile)
    p = statements.seconds
    replay_url = ctx.db.empty()
    r = timed(lambda: replay(ctx.db, replay_url, statements.statements))
    ctx.row(
        "alembic upgrade head, empty database",
        "ms",
        p * 1000,
        r * 1000,
        "latency",
        note=f"{len(statements.statements)} statements",
    )
    ctx.db.drop(url)
    ctx.db.drop(replay_url)

    n = ctx.sizes.adopt_runs
    legacy = ctx.db.empty()
    started = time.perf_counter()
    build_legacy_v1(ctx.db, legacy, n)
    print(
        f"  (built a {n:,}-run schema-1 database in {time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    copy = ctx.db.copy(legacy)
    statements = capture(legacy, ctx.profile, name="adopt")
    r = timed(lambda: replay(ctx.db, copy, statements.statements))
    ctx.row(
        f"adopt + upgrade a {n:,}-run schema-1 database",
        "s",
        statements.seconds,
        r,
        "latency",
        note=f"{len(statements.statements)} statements",
    )
    ctx.db.drop(legacy)
    ctx.db.drop(copy)
