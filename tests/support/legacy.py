"""Databases built the way the earlier, hand-rolled migration system built them.

The earlier system wrote its own DDL: index names that differ from the
reference, NOT NULL and DEFAULT clauses, CHECK constraints, and on PostgreSQL
REAL, TEXT and INTEGER columns where the reference says DOUBLE PRECISION,
TIMESTAMPTZ, JSONB and BOOLEAN. Its data mixed local ``T``-separated and UTC
space-separated timestamps, used ``''`` for unknown times, wrote NaN with
Python's ``json.dumps``, kept agent tokens in plain text and tags as JSON lists.

Longer than ~400 lines on purpose: the earlier system's two DDL versions per
dialect and the rows it wrote are one fixture, and splitting them would separate
facts that are only true together.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import sqlalchemy as sa
from sqlalchemy import Connection

SQLITE_V1 = [
    """CREATE TABLE schema_version (
        version INTEGER PRIMARY KEY,
        applied_at TEXT NOT NULL DEFAULT (datetime('now')))""",
    """CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        engine TEXT NOT NULL,
        suite_name TEXT,
        timestamp TEXT NOT NULL,
        passed INTEGER NOT NULL DEFAULT 0 CHECK (passed IN (0, 1)),
        total_benchmarks INTEGER DEFAULT 0,
        passed_count INTEGER DEFAULT 0,
        failed_count INTEGER DEFAULT 0,
        total_time_seconds REAL,
        kitt_version TEXT,
        raw_json TEXT NOT NULL,
        created_at TEXT DEFAULT (datetime('now')))""",
    """CREATE TABLE benchmarks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        test_name TEXT NOT NULL,
        test_version TEXT,
        run_number INTEGER DEFAULT 1,
        passed INTEGER NOT NULL DEFAULT 0,
        timestamp TEXT,
        created_at TEXT DEFAULT (datetime('now')))""",
    """CREATE TABLE metrics (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        benchmark_id INTEGER NOT NULL REFERENCES benchmarks(id) ON DELETE CASCADE,
        metric_name TEXT NOT NULL,
        metric_value REAL)""",
    """CREATE TABLE hardware (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        gpu_model TEXT, gpu_vram_gb INTEGER, gpu_count INTEGER DEFAULT 1,
        cpu_model TEXT, cpu_cores INTEGER, ram_gb INTEGER,
        environment_type TEXT DEFAULT 'native_linux', fingerprint TEXT)""",
    "CREATE INDEX idx_runs_model ON runs(model)",
    "CREATE INDEX idx_runs_engine ON runs(engine)",
    "CREATE INDEX idx_runs_suite ON runs(suite_name)",
    "CREATE INDEX idx_runs_timestamp ON runs(timestamp)",
    "CREATE INDEX idx_benchmarks_run ON benchmarks(run_id)",
    "CREATE INDEX idx_metrics_benchmark_id ON metrics(benchmark_id)",
    "CREATE INDEX idx_hardware_run_id ON hardware(run_id)",
]

SQLITE_V2 = [
    """CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        hostname TEXT NOT NULL,
        port INTEGER DEFAULT 8090,
        token TEXT,
        status TEXT DEFAULT 'offline',
        gpu_info TEXT, gpu_count INTEGER DEFAULT 0, cpu_info TEXT, ram_gb INTEGER,
        environment_type TEXT, fingerprint TEXT, kitt_version TEXT,
        last_heartbeat TEXT,
        registered_at TEXT DEFAULT (datetime('now')),
        notes TEXT DEFAULT '',
        tags TEXT DEFAULT '[]')""",
    """CREATE TABLE web_campaigns (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT DEFAULT '',
        config_json TEXT NOT NULL DEFAULT '{}',
        status TEXT DEFAULT 'draft',
        agent_id TEXT REFERENCES agents(id),
        created_at TEXT DEFAULT (datetime('now')),
        started_at TEXT, completed_at TEXT,
        total_runs INTEGER DEFAULT 0, succeeded INTEGER DEFAULT 0,
        failed INTEGER DEFAULT 0, skipped INTEGER DEFAULT 0,
        error TEXT)""",
    """CREATE TABLE quick_tests (
        id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL REFERENCES agents(id),
        model_path TEXT NOT NULL, engine_name TEXT NOT NULL, benchmark_name TEXT NOT NULL,
        suite_name TEXT DEFAULT 'quick',
        status TEXT DEFAULT 'queued',
        created_at TEXT DEFAULT (datetime('now')),
        started_at TEXT, completed_at TEXT,
        result_id TEXT REFERENCES runs(id),
        error TEXT)""",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_type TEXT NOT NULL,
        source_id TEXT,
        data TEXT DEFAULT '{}',
        created_at TEXT DEFAULT (datetime('now')))""",
    "CREATE INDEX idx_events_type ON events(event_type)",
    "CREATE INDEX idx_events_source ON events(source_id)",
    "CREATE INDEX idx_events_created_at ON events(created_at)",
]

POSTGRES_V1 = [
    """CREATE TABLE schema_version (
        version INTEGER PRIMARY KEY,
        applied_at TEXT NOT NULL DEFAULT to_char(now(), 'YYYY-MM-DD HH24:MI:SS'))""",
    """CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        engine TEXT NOT NULL,
        suite_name TEXT,
        timestamp TEXT NOT NULL,
        passed INTEGER NOT NULL DEFAULT 0 CHECK (passed IN (0, 1)),
        total_benchmarks INTEGER DEFAULT 0,
        passed_count INTEGER DEFAULT 0,
        failed_count INTEGER DEFAULT 0,
        total_time_seconds REAL,
        kitt_version TEXT,
        raw_json TEXT NOT NULL,
        created_at TIMESTAMP DEFAULT now())""",
    """CREATE TABLE benchmarks (
        id SERIAL PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        test_name TEXT NOT NULL,
        test_version TEXT,
        run_number INTEGER DEFAULT 1,
        passed BOOLEAN NOT NULL DEFAULT false,
        timestamp TEXT,
        created_at TEXT)""",
    """CREATE TABLE metrics (
        id SERIAL PRIMARY KEY,
        benchmark_id INTEGER NOT NULL REFERENCES benchmarks(id) ON DELETE CASCADE,
        metric_name TEXT NOT NULL,
        metric_value REAL)""",
    """CREATE TABLE hardware (
        id SERIAL PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        gpu_model TEXT, gpu_vram_gb INTEGER, gpu_count INTEGER DEFAULT 1,
        cpu_model TEXT, cpu_cores INTEGER, ram_gb INTEGER,
        environment_type TEXT DEFAULT 'native_linux', fingerprint TEXT)""",
    "CREATE INDEX idx_runs_model ON runs(model)",
    "CREATE INDEX idx_runs_engine ON runs(engine)",
    "CREATE INDEX idx_runs_suite ON runs(suite_name)",
    "CREATE INDEX idx_runs_timestamp ON runs(timestamp)",
    "CREATE INDEX idx_benchmarks_run ON benchmarks(run_id)",
    "CREATE INDEX idx_metrics_benchmark_id ON metrics(benchmark_id)",
]

POSTGRES_V2 = [
    """CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        hostname TEXT NOT NULL,
        port INTEGER DEFAULT 8090,
        token TEXT,
        status TEXT DEFAULT 'offline',
        gpu_info TEXT, gpu_count INTEGER DEFAULT 0, cpu_info TEXT, ram_gb INTEGER,
        environment_type TEXT, fingerprint TEXT, kitt_version TEXT,
        last_heartbeat TEXT,
        registered_at TEXT,
        notes TEXT DEFAULT '',
        tags TEXT DEFAULT '[]')""",
    """CREATE TABLE web_campaigns (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT DEFAULT '',
        config_json TEXT NOT NULL DEFAULT '{}',
        status TEXT DEFAULT 'draft',
        agent_id TEXT REFERENCES agents(id),
        created_at TEXT, started_at TEXT, completed_at TEXT,
        total_runs INTEGER DEFAULT 0, succeeded INTEGER DEFAULT 0,
        failed INTEGER DEFAULT 0, skipped INTEGER DEFAULT 0,
        error TEXT)""",
    """CREATE TABLE quick_tests (
        id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL REFERENCES agents(id),
        model_path TEXT NOT NULL, engine_name TEXT NOT NULL, benchmark_name TEXT NOT NULL,
        suite_name TEXT DEFAULT 'quick',
        status TEXT DEFAULT 'queued',
        created_at TEXT, started_at TEXT, completed_at TEXT,
        result_id TEXT REFERENCES runs(id),
        error TEXT)""",
    """CREATE TABLE events (
        id SERIAL PRIMARY KEY,
        event_type TEXT NOT NULL,
        source_id TEXT,
        data JSONB DEFAULT '{}',
        created_at TEXT)""",
    "CREATE INDEX idx_events_type ON events(event_type)",
    "CREATE INDEX idx_events_source ON events(source_id)",
]


def legacy_ddl(dialect: str, version: int) -> list[str]:
    v1, v2 = (SQLITE_V1, SQLITE_V2) if dialect == "sqlite" else (POSTGRES_V1, POSTGRES_V2)
    return v1 + (v2 if version >= 2 else [])


def _documents(samples_dir: Path) -> list[tuple[str, str]]:
    """(name, JSON text) of the samples, plus one with NaN as Python's json.dumps writes it."""
    docs = [(p.stem, p.read_text(encoding="utf-8")) for p in sorted(samples_dir.glob("*.json"))]
    nan_doc = json.loads(docs[0][1])
    nan_doc["results"][0]["metrics"]["broken"] = math.nan
    nan_doc["results"][0]["metrics"]["ceiling"] = math.inf
    nan_doc["note"] = "unicode: ünïcødé ✓ 日本語"
    docs.append(("nan", json.dumps(nan_doc)))
    return docs


# Timestamp text the earlier system wrote: UTC with a space, local with a
# 'T' and microseconds, explicit offsets, and '' for unknown.
LEGACY_TIMES = [
    "2026-02-12 10:00:00",
    "2026-02-12T10:00:00.123456",
    "2026-02-12T10:00:00+00:00",
    "2026-02-12T12:30:00+02:00",
]


def populate(connection: Connection, version: int, samples_dir: Path) -> None:
    """Fill a legacy database with the earlier system's kind of data."""
    pg = connection.dialect.name == "postgresql"
    for v in range(1, version + 1):
        connection.execute(
            sa.text("INSERT INTO schema_version (version, applied_at) VALUES (:v, :t)"),
            {"v": v, "t": f"2025-0{v}-01 08:00:00"},
        )
    docs = _documents(samples_dir)
    bench_id = 0
    for n, (name, raw) in enumerate(docs):
        doc = json.loads(raw)
        run_id = f"run-{n}-{name}"
        _insert_run(
            connection,
            run_id,
            doc,
            raw,
            timestamp=LEGACY_TIMES[n % len(LEGACY_TIMES)],
            passed=int(bool(doc.get("passed"))),
            created_at="2026-02-12 10:00:01" if n % 2 else None,
        )
        for result in doc.get("results", []):
            bench_id += 1
            connection.execute(
                sa.text(
                    "INSERT INTO benchmarks (id, run_id, test_name, test_version, run_number, "
                    "passed, timestamp, created_at) VALUES (:id, :run, :name, :ver, :num, "
                    ":passed, :ts, :created)"
                ),
                {
                    "id": bench_id * 3,  # gaps, as after deletions
                    "run": run_id,
                    "name": result["test_name"],
                    "ver": result.get("test_version"),
                    "num": result.get("run_number"),
                    "passed": bool(result["passed"]) if pg else int(result["passed"]),
                    "ts": result.get("timestamp") or "",
                    "created": "" if bench_id % 2 else "2026-02-12 10:00:02",
                },
            )
            _insert_metrics(connection, bench_id * 3, result, pg)
        _insert_hardware(connection, run_id, doc)
    if version >= 2:
        _populate_v2(connection, pg, first_run=f"run-0-{docs[0][0]}")


def _insert_run(
    connection: Connection,
    run_id: str,
    doc: dict[str, Any],
    raw: str,
    *,
    timestamp: str,
    passed: int | bool,
    created_at: str | None,
) -> None:
    """One ``runs`` row as the earlier system wrote it (``raw`` is the document's own text)."""
    connection.execute(
        sa.text(
            "INSERT INTO runs (id, model, engine, suite_name, timestamp, passed, "
            "total_benchmarks, passed_count, failed_count, total_time_seconds, "
            "kitt_version, raw_json, created_at) VALUES (:id, :model, :engine, :suite, "
            ":ts, :passed, :total, :pc, :fc, :tts, :kv, :raw, :created)"
        ),
        {
            "id": run_id,
            "model": doc.get("model", ""),
            "engine": doc.get("engine", ""),
            "suite": doc.get("suite_name"),
            "ts": timestamp,
            "passed": passed,
            "total": doc.get("total_benchmarks"),
            "pc": doc.get("passed_count"),
            "fc": doc.get("failed_count"),
            "tts": doc.get("total_time_seconds"),
            "kv": doc.get("kitt_version"),
            "raw": raw,
            "created": created_at,
        },
    )


def _insert_metrics(
    connection: Connection, benchmark_id: int, result: dict[str, Any], pg: bool
) -> None:
    """The numeric metrics of one result (the earlier system kept no other kind)."""
    for key, value in result.get("metrics", {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            connection.execute(
                sa.text(
                    "INSERT INTO metrics (benchmark_id, metric_name, metric_value) "
                    "VALUES (:b, :k, :v)"
                ),
                {"b": benchmark_id, "k": key, "v": value if pg else _sqlite_real(value)},
            )


def _insert_hardware(connection: Connection, run_id: str, doc: dict[str, Any]) -> None:
    """The run's ``hardware`` row, from ``system_info`` (whose ``cpu`` may be a bare string)."""
    system = doc.get("system_info") or {}
    gpu = system.get("gpu") or {}
    cpu = system.get("cpu")
    connection.execute(
        sa.text(
            "INSERT INTO hardware (run_id, gpu_model, gpu_vram_gb, gpu_count, cpu_model, "
            "cpu_cores, ram_gb, environment_type, fingerprint) VALUES (:run, :gm, :gv, :gc, "
            ":cm, :cc, :ram, :env, :fp)"
        ),
        {
            "run": run_id,
            "gm": gpu.get("model"),
            "gv": gpu.get("vram_gb"),
            "gc": gpu.get("count"),
            "cm": cpu.get("model") if isinstance(cpu, dict) else cpu,
            "cc": cpu.get("cores") if isinstance(cpu, dict) else None,
            "ram": system.get("ram_gb"),
            "env": system.get("environment_type"),
            "fp": system.get("fingerprint"),
        },
    )


def _sqlite_real(value: float) -> float | None:
    # The earlier system's NaN became NULL on SQLite.
    return None if isinstance(value, float) and math.isnan(value) else value


def _populate_v2(connection: Connection, pg: bool, first_run: str) -> None:
    agents = [
        (
            "agent-1",
            "dgx-01",
            "10.0.0.5",
            "plain-secret-token",
            "online",
            '["gpu", "h100"]',
            "2026-02-12 09:59:00",
        ),
        ("agent-2", "spark", "spark.local", None, "idle", "gpu2,arm", ""),
    ]
    for agent in agents:
        connection.execute(
            sa.text(
                "INSERT INTO agents (id, name, hostname, port, token, status, tags, "
                "last_heartbeat, registered_at, notes) VALUES (:id, :name, :host, 8090, :token, "
                ":status, :tags, :hb, :reg, :notes)"
            ),
            {
                "id": agent[0],
                "name": agent[1],
                "host": agent[2],
                "token": agent[3],
                "status": agent[4],
                "tags": agent[5],
                "hb": agent[6],
                "reg": "2026-01-05T08:00:00.5",
                "notes": "rack 3 — ünïcødé",
            },
        )
    connection.execute(
        sa.text(
            "INSERT INTO web_campaigns (id, name, config_json, status, agent_id, created_at, "
            "started_at, total_runs, succeeded, failed, skipped) VALUES ('camp-1', 'nightly', "
            ":cfg, 'draft', 'agent-1', '2026-02-01 00:00:00', '', 4, 1, 0, 0)"
        ),
        {"cfg": json.dumps({"models": ["a", "b"], "engines": ["vllm"], "repeat": 2})},
    )
    connection.execute(
        sa.text(
            "INSERT INTO quick_tests (id, agent_id, model_path, engine_name, benchmark_name, "
            "status, created_at, completed_at, result_id) VALUES ('qt-1', 'agent-1', '/m', "
            "'vllm', 'throughput', 'completed', '2026-02-12T10:00:00', '2026-02-12 10:05:00', "
            ":result)"
        ),
        {"result": first_run},
    )
    for i in range(1, 6):
        connection.execute(
            sa.text(
                "INSERT INTO events (id, event_type, source_id, data, created_at) "
                "VALUES (:id, :type, 'agent-1', :data, :ts)"
            ),
            {
                "id": i,
                "type": "agent.heartbeat",
                "data": json.dumps({"n": i}),
                "ts": f"2026-02-12 10:00:0{i}",
            },
        )
    if pg:
        connection.exec_driver_sql("SELECT setval('events_id_seq', 9)")
    else:
        # Rows 6..9 were deleted once: AUTOINCREMENT must not hand those ids out again.
        connection.exec_driver_sql("UPDATE sqlite_sequence SET seq = 9 WHERE name = 'events'")


def build_legacy(url: str, version: int, samples_dir: Path, extra: Iterable[str] = ()) -> None:
    """Create and fill a legacy database at ``version`` (plus any extra statements)."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        for statement in legacy_ddl(connection.dialect.name, version):
            connection.exec_driver_sql(statement)
        populate(connection, version, samples_dir)
        for statement in extra:
            connection.exec_driver_sql(statement)
    engine.dispose()


def snapshot(url: str) -> dict[str, Any]:
    """Every table's definition and rows, as the raw driver returns them."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    result: dict[str, Any] = {}
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        for table in sorted(inspector.get_table_names()):
            columns = inspector.get_columns(table)
            names = [c["name"] for c in columns]
            quoted = ", ".join(f'"{n}"' for n in names)
            rows = connection.exec_driver_sql(f'SELECT {quoted} FROM "{table}"').all()
            result[table] = {
                "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in columns],
                "indexes": sorted(ix["name"] or "" for ix in inspector.get_indexes(table)),
                "rows": sorted((tuple(_comparable(v) for v in row) for row in rows), key=repr),
            }
        if connection.dialect.name == "sqlite":
            result["sqlite_master"] = sorted(
                tuple(r)
                for r in connection.exec_driver_sql(
                    "SELECT type, name, tbl_name, sql FROM sqlite_master"
                )
            )
    engine.dispose()
    return result


def _comparable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "<NaN>"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


# --- results the way the earlier system saved them ------------------------------------
#
# Its save: a random 16-hex run id, no deduplication (the same document saved
# twice is two rows), one benchmark row per result (ids from the database),
# only top-level numeric metrics (nested objects such as ``ttft_ms`` were
# skipped: they live only in raw_json), and ``created_at`` left to SQLite's
# ``datetime('now')`` form.


def legacy_run_id(rng: random.Random) -> str:
    """A run id as the earlier system made them: 16 random hex characters."""
    return f"{rng.getrandbits(64):016x}"


def save_like_legacy(
    connection: Connection, raw: str, run_id: str, created_at: str | None = "2026-02-12 10:00:01"
) -> list[int]:
    """Store one result document as the earlier system's save did; the benchmark ids."""
    pg = connection.dialect.name == "postgresql"
    # runs.passed is INTEGER in the earlier system's DDL, BOOLEAN once adopted on PostgreSQL.
    native_bool = pg and any(
        c["name"] == "passed" and isinstance(c["type"], sa.Boolean)
        for c in sa.inspect(connection).get_columns("runs")
    )
    doc = json.loads(raw)
    _insert_run(
        connection,
        run_id,
        doc,
        raw,
        timestamp=doc.get("timestamp", ""),
        passed=bool(doc.get("passed")) if native_bool else int(bool(doc.get("passed"))),
        created_at=created_at,
    )
    ids = []
    for result in doc.get("results", []):
        bench_id = connection.execute(
            sa.text(
                "INSERT INTO benchmarks (run_id, test_name, test_version, run_number, passed, "
                "timestamp, created_at) VALUES (:run, :name, :ver, :num, :passed, :ts, :created) "
                "RETURNING id"
            ),
            {
                "run": run_id,
                "name": result["test_name"],
                "ver": result.get("test_version"),
                "num": result.get("run_number", 1),
                "passed": bool(result.get("passed")) if pg else int(bool(result.get("passed"))),
                "ts": result.get("timestamp") or "",
                "created": created_at,
            },
        ).scalar_one()
        ids.append(bench_id)
        _insert_metrics(connection, bench_id, result, pg)
    _insert_hardware(connection, run_id, doc)
    return ids


def latency_documents(samples_dir: Path, count: int) -> list[str]:
    """``count`` different latency documents (nested ``ttft_ms``), as JSON text."""
    base = json.loads((samples_dir / "sample_agent_latency.json").read_text("utf-8"))
    docs = []
    for i in range(count):
        doc = json.loads(json.dumps(base))
        doc["timestamp"] = f"2026-02-{10 + i:02d}T09:00:00.{i:06d}"
        doc["results"][0]["metrics"]["ttft_ms"]["p50"] = 40.0 + i
        docs.append(json.dumps(doc))
    return docs


class LegacyResults:
    """What :func:`build_legacy_results` stored, for the tests to look up.

    (A plain class: the bench loads this file without registering it as a
    module, which dataclasses need.)
    """

    def __init__(self) -> None:
        #: (legacy run id, JSON text) of every run, in insertion order.
        self.runs: list[tuple[str, str]] = []
        #: The document stored twice, and its two run ids (older first).
        self.duplicate = ""
        self.duplicate_ids = ("", "")
        #: How many stored results hold ``ttft_ms.p50`` (only in raw_json).
        self.ttft_results = 0


def build_legacy_results(
    url: str, samples_dir: Path, *, latency_runs: int = 14, seed: int = 10
) -> LegacyResults:
    """A schema-1 database whose runs the earlier system's save wrote: 16-hex ids, every
    sample, ``latency_runs`` latency documents and one of them saved a second time
    (its first copy the older by ``created_at`` although it sorts later by id)."""
    rng = random.Random(seed)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    out = LegacyResults()
    with engine.begin() as connection:
        for statement in legacy_ddl(connection.dialect.name, 1):
            connection.exec_driver_sql(statement)
        connection.execute(
            sa.text("INSERT INTO schema_version (version, applied_at) VALUES (1, :t)"),
            {"t": "2025-01-01 08:00:00"},
        )
        texts = [raw for _, raw in _documents(samples_dir)] + latency_documents(
            samples_dir, latency_runs
        )
        for n, raw in enumerate(texts):
            run_id = legacy_run_id(rng)
            save_like_legacy(connection, raw, run_id, f"2026-02-12 10:{n // 60:02d}:{n % 60:02d}")
            out.runs.append((run_id, raw))
        out.duplicate = texts[-1]
        first = next(run_id for run_id, raw in out.runs if raw == out.duplicate)
        second = "0" + legacy_run_id(rng)[1:]  # sorts before the first copy's id
        save_like_legacy(connection, out.duplicate, second, "2026-02-13 08:00:00")
        out.runs.append((second, out.duplicate))
        out.duplicate_ids = (first, second)
    engine.dispose()
    out.ttft_results = sum(
        1
        for _, raw in out.runs
        for result in json.loads(raw).get("results", [])
        if "p50" in (result.get("metrics", {}).get("ttft_ms") or {})
    )
    return out


# --- a history written the way the earlier system wrote times -------------------
#
# Its code stamped rows with ``datetime.now().isoformat()`` on a machine in some
# zone (local, naive, ``T``, microseconds), copied the document's timestamp of
# the same kind into ``runs.timestamp``, left ``created_at`` columns to SQLite's
# ``datetime('now')`` (UTC, space, whole seconds), and wrote ``''`` for unknown.
# The zone here is New York, and the runs cross its spring-forward
# (2026-03-08 02:00 EST -> 03:00 EDT), so a fixed offset would not do either.

HISTORY_ZONE = "America/New_York"
HISTORY_START = datetime(2026, 3, 7, 9, 0, 0, tzinfo=UTC)
HISTORY_RUNS = 37


@dataclass(frozen=True)
class Stamp:
    """One stored time: the form it was written in and the instant it means."""

    form: str  # "local", "utc" (SQLite's datetime('now')), "offset" or "blank"
    instant: datetime | None = None

    def text(self, zone: ZoneInfo) -> str:
        if self.form == "blank" or self.instant is None:
            return ""
        if self.form == "local":
            return self.instant.astimezone(zone).replace(tzinfo=None).isoformat()
        if self.form == "utc":
            return self.instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        return self.instant.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()

    @property
    def expected(self) -> datetime | None:
        if self.form == "blank" or self.instant is None:
            return None
        return self.instant.replace(microsecond=0) if self.form == "utc" else self.instant


@dataclass
class History:
    """Rows to write and the instants every query must order them by."""

    zone: ZoneInfo
    rows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def expected(self, table: str, column: str, key: str = "id") -> dict[Any, datetime | None]:
        return {
            row[key]: (row[column].expected if isinstance(row[column], Stamp) else row[column])
            for name, row in self.rows
            if name == table and column in row
        }

    def split(self, fraction: float) -> tuple[list[tuple[str, dict[str, Any]]], list[Any]]:
        """The rows before and after a point in time order (runs and what hangs off them
        stay together): the earlier system wrote the first part before adoption."""
        cut = int(len(self.rows) * fraction)
        while cut < len(self.rows) and self.rows[cut][0] in ("benchmarks", "metrics"):
            cut += 1
        # Upgrade derives benchmark rows of its own, which take the next ids: the
        # later writer's explicit ids move past them (here and in ``expected``).
        for table, row in self.rows[cut:]:
            if table == "benchmarks":
                row["id"] += LATER_BENCHMARK_IDS
            elif table == "metrics":
                row["benchmark_id"] += LATER_BENCHMARK_IDS
        return self.rows[:cut], self.rows[cut:]


#: Where the benchmark ids of rows written after adoption start (see ``History.split``).
LATER_BENCHMARK_IDS = 1_000_000


def _at(minutes: float, micro: int = 0) -> datetime:
    return HISTORY_START + timedelta(minutes=minutes, microseconds=micro)


def history(samples_dir: Path, zone: str = HISTORY_ZONE) -> History:
    """37 runs, 3 agents, 6 campaigns, 6 quick tests and 10 events, times in mixed forms."""
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(samples_dir.glob("*.json"))]
    made = History(ZoneInfo(zone))
    local = made.zone
    bench_id = 100
    for i in range(HISTORY_RUNS):
        # Every 97 minutes from Saturday 04:00 in New York, across the clock change;
        # a few runs carry an offset (never shifted), a few are unknown ('').
        when = _at(97 * i, micro=1000 * i + 7)
        form = "blank" if i % 11 == 5 else "offset" if i % 8 == 3 else "local"
        stamp = Stamp(form, when)
        doc = json.loads(json.dumps(docs[i % len(docs)]))
        doc["timestamp"] = stamp.text(local)
        doc["note"] = f"history run {i}"
        run_id = f"{i:016x}"
        made.rows.append(
            (
                "runs",
                {
                    "id": run_id,
                    "model": doc["model"],
                    "engine": doc["engine"],
                    "suite_name": doc.get("suite_name"),
                    "timestamp": stamp,
                    "passed": int(bool(doc.get("passed"))),
                    "kitt_version": doc.get("kitt_version"),
                    "raw_json": doc,
                    "created_at": Stamp("utc", when.replace(microsecond=0) + timedelta(seconds=1)),
                },
            )
        )
        for k, result in enumerate(doc.get("results", [])[:2]):
            bench_id += 1
            result_stamp = Stamp("local", when + timedelta(minutes=k + 1))
            result["timestamp"] = result_stamp.text(local)
            result.setdefault("metrics", {})["history_index"] = i
            made.rows.append(
                (
                    "benchmarks",
                    {
                        "id": bench_id,
                        "run_id": run_id,
                        "test_name": result["test_name"],
                        "test_version": result.get("test_version"),
                        "run_number": result.get("run_number"),
                        "passed": bool(result.get("passed")),
                        "timestamp": result_stamp,
                        "created_at": Stamp(
                            "utc", when.replace(microsecond=0) + timedelta(seconds=2)
                        ),
                    },
                )
            )
            made.rows.append(
                (
                    "metrics",
                    {"benchmark_id": bench_id, "metric_name": "history_index", "metric_value": i},
                )
            )
    last = _at(97 * (HISTORY_RUNS - 1))
    for n, (name, age_hours, form) in enumerate(
        [("dgx-01", 0.0, "local"), ("dgx-02", 3.0, "local"), ("spark", 0.5, "utc")]
    ):
        made.rows.append(
            (
                "agents",
                {
                    "id": f"agent-{n}",
                    "name": name,
                    "hostname": f"{name}.lab",
                    "status": "idle",
                    "last_heartbeat": Stamp(
                        form, last - timedelta(hours=age_hours, microseconds=-n)
                    ),
                    "registered_at": Stamp("local", _at(-600 + n, micro=5)),
                },
            )
        )
    for n in range(6):
        # Created one every 7 hours; explicit local stamps and left-to-default UTC
        # ones alternate, which text order gets wrong on the same day.
        created = _at(420 * n, micro=0 if n % 2 else 31 * n + 1)
        made.rows.append(
            (
                "web_campaigns",
                {
                    "id": f"camp-{n}",
                    "name": f"campaign {n}",
                    "config_json": "{}",
                    "status": "draft" if n % 3 == 0 else "completed",
                    "agent_id": "agent-0",
                    "created_at": Stamp("utc" if n % 2 else "local", created),
                    "started_at": Stamp("blank")
                    if n % 3 == 0
                    else Stamp("local", created + timedelta(minutes=5)),
                    "completed_at": Stamp("blank")
                    if n % 3 == 0
                    else Stamp("local", created + timedelta(minutes=65)),
                },
            )
        )
    for n in range(6):
        created = _at(300 * n + 13, micro=0 if n % 2 else 17 * n + 3)
        made.rows.append(
            (
                "quick_tests",
                {
                    "id": f"qt-{n}",
                    "agent_id": "agent-1",
                    "model_path": "/models/m",
                    "engine_name": "vllm",
                    "benchmark_name": "throughput",
                    "status": "queued" if n < 3 else "running",
                    "created_at": Stamp("utc" if n % 2 else "local", created),
                    "started_at": Stamp("blank")
                    if n < 3
                    else Stamp("local", created + timedelta(minutes=2)),
                },
            )
        )
    for n in range(10):
        made.rows.append(
            (
                "events",
                {
                    "id": n + 1,
                    "event_type": "agent.heartbeat",
                    "source_id": "agent-0",
                    "data": json.dumps({"n": n}),
                    "created_at": Stamp("utc" if n % 3 else "local", _at(211 * n, micro=n)),
                },
            )
        )
    return made


def write_history(url: str, history: History, rows: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """Insert ``rows`` with the plain driver, in the earlier system's style.

    Into a legacy database (TEXT columns) every stamp goes in as its text. Into
    an adopted PostgreSQL database the TIMESTAMPTZ columns take what that code
    would send there: its naive local text as is, ``now()``-like instants where
    it relied on a default, and NULL (not '', which PostgreSQL refuses) for unknown.
    """
    pg = url.startswith("postgresql")
    if pg:
        connection: Any = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        types = dict(
            connection.execute(
                "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns"
            ).fetchall()
        )
    else:
        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        types = {}
    try:
        for table, row in rows:
            values: dict[str, Any] = {}
            for column, value in row.items():
                if isinstance(value, Stamp):
                    kind = types.get(f"{table}.{column}", "text")
                    if kind == "text":
                        value = value.text(history.zone)
                    elif kind.startswith("timestamp with"):
                        value = (
                            None
                            if value.form == "blank"
                            else value.expected
                            if value.form == "utc"
                            else value.text(history.zone)
                        )
                    else:  # the earlier PostgreSQL schema's TIMESTAMP DEFAULT now()
                        value = value.instant.replace(tzinfo=None) if value.instant else None
                elif isinstance(value, bool | int) and not isinstance(value, Stamp):
                    kind = types.get(f"{table}.{column}", "integer")
                    if kind == "boolean" or (pg and kind == "integer" and column == "passed"):
                        value = bool(value) if kind == "boolean" else int(value)
                    elif isinstance(value, bool):
                        value = int(value)
                elif isinstance(value, dict):
                    value = json.dumps(value)
                values[column] = value
            names = ", ".join(f'"{c}"' for c in values)
            marks = ", ".join((f"%({c})s" if pg else f":{c}") for c in values)
            connection.execute(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', values)
        if pg:
            for table in ("benchmarks", "metrics", "events"):
                connection.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        connection.commit()
    finally:
        connection.close()


def build_legacy_history(url: str, history: History, rows: Iterable[Any] | None = None) -> None:
    """A schema-2 legacy database holding ``rows`` of ``history`` (all by default)."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        for statement in legacy_ddl(connection.dialect.name, 2):
            connection.exec_driver_sql(statement)
        for version in (1, 2):
            connection.execute(
                sa.text("INSERT INTO schema_version (version, applied_at) VALUES (:v, :t)"),
                {"v": version, "t": f"2025-0{version}-01 08:00:00"},
            )
    engine.dispose()
    write_history(url, history, history.rows if rows is None else rows)
