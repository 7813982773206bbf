"""The raw-driver baseline: ``sqlite3`` and psycopg 3 with hand-written SQL.

It does the work the project does, on the same schema (created by the
project's migrations) and the same data, the fastest honest way a careful
developer would write it by hand: content-derived run ids, the run, its
hardware, benchmarks and metrics, and the ``run.saved`` event (under the same
advisory lock and NOTIFY on PostgreSQL), in one transaction per document for
saves and in batches with ``executemany`` (SQLite) or ``COPY`` (PostgreSQL) for
imports. What it leaves out is the project's added value: validation of the
document and typed DTOs; query results are the driver's own tuples.

The queries are the best plain SQL for each answer on the project's schema
(its extra indexes and the leaderboard aggregate included), not the project's
own statements: the latest runs join the hardware headline after the limit,
and single reads on PostgreSQL run in autocommit (no BEGIN/COMMIT round
trips), as a raw client would send them. Every write also maintains the
leaderboard aggregate, as the project's do, with one hand-written upsert.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from karr_db.documents import RUN_ID_NAMESPACE

#: Same key as the project's event log lock (see karr_db.dialects.postgresql).
EVENT_LOCK = 0x4B455654


def _run_id(document: dict[str, Any]) -> str:
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return str(uuid.uuid5(RUN_ID_NAMESPACE, text))


def _flatten(metrics: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    for key, value in metrics.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        elif isinstance(value, bool):
            yield f"{prefix}{key}", 1.0 if value else 0.0
        elif isinstance(value, int | float):
            yield f"{prefix}{key}", float(value)


def _utc(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds") + "+00:00"


def _hardware(doc: dict[str, Any]) -> tuple[Any, ...] | None:
    info = doc.get("system_info")
    if info is None:
        return None
    gpu = info.get("gpu") or {}
    cpu = info.get("cpu") or {}
    return (
        gpu.get("model"),
        gpu.get("vram_gb"),
        gpu.get("count"),
        cpu.get("model"),
        cpu.get("cores"),
        info.get("ram_gb"),
        info.get("environment_type"),
        info.get("fingerprint"),
    )


_RUN_COLUMNS = (
    "id, model, engine, suite_name, timestamp, passed, total_benchmarks, passed_count, "
    "failed_count, total_time_seconds, kitt_version, raw_json, created_at"
)
_HW_COLUMNS = (
    "run_id, gpu_model, gpu_vram_gb, gpu_count, cpu_model, cpu_cores, ram_gb, "
    "environment_type, fingerprint"
)
_BENCH_COLUMNS = "id, run_id, test_name, test_version, run_number, passed, timestamp, created_at"


class RawBackend:
    """What both raw baselines offer the harness."""

    def close(self) -> None:
        raise NotImplementedError

    def save(self, doc: dict[str, Any]) -> str:
        raise NotImplementedError

    def import_batch(self, docs: Iterable[dict[str, Any]]) -> int:
        raise NotImplementedError

    def append_events(self, count: int) -> None:
        raise NotImplementedError

    def latest(self, model: str, engine: str, limit: int = 50) -> list[Any]:
        raise NotImplementedError

    def leaderboard(self, metric: str) -> list[Any]:
        raise NotImplementedError

    def leaderboard_fast(self, metric: str) -> list[Any]:
        """count/avg/min/max by model and engine from the aggregate table."""
        raise NotImplementedError

    def history(self, metric: str, model: str, engine: str) -> list[Any]:
        raise NotImplementedError

    def detail(self, run_id: str) -> tuple[Any, list[Any], list[Any]]:
        raise NotImplementedError

    def count_passed(self, passed: bool) -> int:
        raise NotImplementedError

    def tail(self, after: int, page: int = 1000) -> int:
        raise NotImplementedError

    def export(self, directory: Path) -> int:
        raise NotImplementedError


# --- SQLite -------------------------------------------------------------------


class RawSqlite(RawBackend):
    """sqlite3 with the project's pragmas (WAL, foreign keys, busy timeout)."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA busy_timeout = 30000")
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.execute("PRAGMA journal_mode = WAL")

    def close(self) -> None:
        self.conn.close()

    # writes

    def _rows(
        self, doc: dict[str, Any], run_id: str, now: str, first_bench: int
    ) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        run = (
            run_id,
            doc["model"],
            doc["engine"],
            doc.get("suite_name"),
            _sqlite_time(_utc(doc["timestamp"])),
            None if doc.get("passed") is None else int(doc["passed"]),
            doc.get("total_benchmarks"),
            doc.get("passed_count"),
            doc.get("failed_count"),
            doc.get("total_time_seconds"),
            doc.get("kitt_version"),
            json.dumps(doc, ensure_ascii=False, separators=(",", ":")),
            now,
        )
        benches: list[tuple[Any, ...]] = []
        metrics: list[tuple[Any, ...]] = []
        for offset, result in enumerate(doc.get("results", [])):
            bench_id = first_bench + offset
            passed = result.get("passed")
            benches.append(
                (
                    bench_id,
                    run_id,
                    result["test_name"],
                    result.get("test_version"),
                    result.get("run_number"),
                    None if passed is None else int(passed),
                    _sqlite_time(_utc(result.get("timestamp"))),
                    now,
                )
            )
            metrics.extend((bench_id, n, v) for n, v in _flatten(result.get("metrics", {})))
        return run, benches, metrics

    def _next_benchmark_id(self) -> int:
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'benchmarks'")
        found = row.fetchone()
        return (found[0] if found else 0) + 1

    def _write(self, docs: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Insert documents inside the open write transaction (explicit benchmark ids)."""
        now = _sqlite_time(datetime.now(UTC))
        assert now is not None
        next_id = self._next_benchmark_id()
        runs, hardware, benches, metrics, events = [], [], [], [], []
        for run_id, doc in docs:
            run, b, m = self._rows(doc, run_id, now, next_id)
            next_id += len(b)
            runs.append(run)
            hw = _hardware(doc)
            if hw is not None:
                hardware.append((run_id, *hw))
            benches.extend(b)
            metrics.extend(m)
            data = {
                "model": doc["model"],
                "engine": doc["engine"],
                "suite_name": doc.get("suite_name"),
            }
            events.append(("run.saved", run_id, json.dumps(data), now))
        c = self.conn
        c.executemany(f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({','.join('?' * 13)})", runs)
        c.executemany(
            f"INSERT INTO hardware ({_HW_COLUMNS}) VALUES ({','.join('?' * 9)})", hardware
        )
        c.executemany(
            f"INSERT INTO benchmarks ({_BENCH_COLUMNS}) VALUES ({','.join('?' * 8)})", benches
        )
        c.executemany(
            "INSERT INTO metrics (benchmark_id, metric_name, metric_value) VALUES (?, ?, ?)",
            metrics,
        )
        c.executemany(
            "INSERT INTO events (event_type, source_id, data, created_at) VALUES (?, ?, ?, ?)",
            events,
        )
        ids = [run_id for run_id, _ in docs]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            c.execute(aggregate_upsert("sqlite", ",".join("?" * len(chunk))), chunk)

    def save(self, doc: dict[str, Any]) -> str:
        run_id = _run_id(doc)
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            if c.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                self._write([(run_id, doc)])
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return run_id

    def import_batch(self, docs: Iterable[dict[str, Any]]) -> int:
        """One transaction: skip present runs, insert the rest in bulk."""
        keyed = {_run_id(doc): doc for doc in docs}
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            ids = list(keyed)
            present: set[str] = set()
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                present.update(
                    r[0] for r in c.execute(f"SELECT id FROM runs WHERE id IN ({marks})", chunk)
                )
            fresh = [(k, d) for k, d in keyed.items() if k not in present]
            self._write(fresh)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return len(fresh)

    def append_events(self, count: int) -> None:
        now = _sqlite_time(datetime.now(UTC))
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        c.executemany(
            "INSERT INTO events (event_type, source_id, data, created_at) VALUES (?, ?, ?, ?)",
            [("agent.updated", f"agent-{i}", json.dumps({"n": i}), now) for i in range(count)],
        )
        c.execute("COMMIT")

    # reads

    def latest(self, model: str, engine: str, limit: int = 50) -> list[Any]:
        return self.conn.execute(_LATEST_SQLITE, (model, engine, limit)).fetchall()

    def leaderboard(self, metric: str) -> list[Any]:
        return self.conn.execute(_LEADERBOARD_SQLITE, (metric,)).fetchall()

    def leaderboard_fast(self, metric: str) -> list[Any]:
        return self.conn.execute(_LEADERBOARD_AGGREGATE.replace("%s", "?"), (metric,)).fetchall()

    def history(self, metric: str, model: str, engine: str) -> list[Any]:
        return self.conn.execute(
            _HISTORY_SQL.replace("%s", "?"), (metric, model, engine)
        ).fetchall()

    def detail(self, run_id: str) -> tuple[Any, list[Any], list[Any]]:
        c = self.conn
        run = c.execute(_DETAIL_RUN.replace("%s", "?"), (run_id,)).fetchone()
        benches = c.execute(_DETAIL_BENCH.replace("%s", "?"), (run_id,)).fetchall()
        metrics = c.execute(_DETAIL_METRICS.replace("%s", "?"), (run_id,)).fetchall()
        return run, benches, metrics

    def count_passed(self, passed: bool) -> int:
        row = self.conn.execute("SELECT count(*) FROM runs WHERE passed = ?", (int(passed),))
        return int(row.fetchone()[0])

    def tail(self, after: int, page: int = 1000) -> int:
        """Read every event after ``after`` (payload and time decoded); the count read."""
        read = 0
        c = self.conn
        while True:
            rows = c.execute(
                "SELECT id, event_type, source_id, data, created_at FROM events "
                "WHERE id > ? ORDER BY id LIMIT ?",
                (after, page),
            ).fetchall()
            for row in rows:
                json.loads(row[3]) if row[3] is not None else None
                _utc(row[4])
            read += len(rows)
            if len(rows) < page:
                return read
            after = rows[-1][0]

    def export(self, directory: Path) -> int:
        written = 0
        cursor = self.conn.execute("SELECT id, raw_json FROM runs ORDER BY id")
        while rows := cursor.fetchmany(100):
            for run_id, raw in rows:
                write_document(json.loads(raw), directory / run_id / "metrics.json")
                written += 1
        return written


# --- PostgreSQL -----------------------------------------------------------------


class RawPostgres(RawBackend):
    """psycopg 3 in UTC, one transaction per unit of work."""

    def __init__(self, url: str) -> None:
        # Autocommit: a single read is one round trip; writes open a transaction.
        self.conn = psycopg.connect(url, options="-c TimeZone=UTC", autocommit=True)

    def close(self) -> None:
        self.conn.close()

    def _write(self, docs: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """COPY the documents' rows in; benchmark ids drawn from their sequence first."""
        c = self.conn
        now = datetime.now(UTC)
        total = sum(len(d.get("results", [])) for _, d in docs)
        ids = iter(
            r[0]
            for r in c.execute(
                "SELECT nextval('benchmarks_id_seq') FROM generate_series(1, %s)", (total,)
            )
        )
        with c.cursor() as cur:
            with cur.copy(f"COPY runs ({_RUN_COLUMNS}) FROM STDIN") as copy:
                for run_id, doc in docs:
                    copy.write_row(
                        (
                            run_id,
                            doc["model"],
                            doc["engine"],
                            doc.get("suite_name"),
                            _utc(doc["timestamp"]),
                            doc.get("passed"),
                            doc.get("total_benchmarks"),
                            doc.get("passed_count"),
                            doc.get("failed_count"),
                            doc.get("total_time_seconds"),
                            doc.get("kitt_version"),
                            json.dumps(doc, ensure_ascii=False, separators=(",", ":")),
                            now,
                        )
                    )
            with cur.copy(f"COPY hardware ({_HW_COLUMNS}) FROM STDIN") as copy:
                for run_id, doc in docs:
                    hw = _hardware(doc)
                    if hw is not None:
                        copy.write_row((run_id, *hw))
            metrics: list[tuple[int, str, float]] = []
            with cur.copy(f"COPY benchmarks ({_BENCH_COLUMNS}) FROM STDIN") as copy:
                for run_id, doc in docs:
                    for result in doc.get("results", []):
                        bench_id = next(ids)
                        copy.write_row(
                            (
                                bench_id,
                                run_id,
                                result["test_name"],
                                result.get("test_version"),
                                result.get("run_number"),
                                result.get("passed"),
                                _utc(result.get("timestamp")),
                                now,
                            )
                        )
                        metrics.extend(
                            (bench_id, n, v) for n, v in _flatten(result.get("metrics", {}))
                        )
            with cur.copy(
                "COPY metrics (benchmark_id, metric_name, metric_value) FROM STDIN"
            ) as copy:
                for row in metrics:
                    copy.write_row(row)
            c.execute("SELECT pg_advisory_xact_lock(%s)", (EVENT_LOCK,))
            events = [
                (
                    "run.saved",
                    run_id,
                    json.dumps(
                        {
                            "model": d["model"],
                            "engine": d["engine"],
                            "suite_name": d.get("suite_name"),
                        }
                    ),
                    now,
                )
                for run_id, d in docs
            ]
            self._events(cur, events)
            # Under the event lock, as the project's: one writer at a time per aggregate row.
            cur.execute(
                aggregate_upsert("postgresql", "SELECT unnest(%s::text[])"), ([r for r, _ in docs],)
            )

    @staticmethod
    def _events(cur: psycopg.Cursor[Any], events: list[tuple[Any, ...]]) -> None:
        """Insert events in one statement and NOTIFY the newest id (delivered at commit)."""
        if not events:
            return
        cur.execute(
            "WITH e AS (INSERT INTO events (event_type, source_id, data, created_at) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::jsonb[], %s::timestamptz[]) "
            "RETURNING id) SELECT pg_notify('karr_events', max(id)::text) FROM e",
            [list(col) for col in zip(*events, strict=True)],
        )

    def save(self, doc: dict[str, Any]) -> str:
        run_id = _run_id(doc)
        with self.conn.transaction():
            found = self.conn.execute("SELECT 1 FROM runs WHERE id = %s", (run_id,)).fetchone()
            if found is None:
                self._write([(run_id, doc)])
        return run_id

    def import_batch(self, docs: Iterable[dict[str, Any]]) -> int:
        keyed = {_run_id(doc): doc for doc in docs}
        with self.conn.transaction():
            present = {
                r[0]
                for r in self.conn.execute("SELECT id FROM runs WHERE id = ANY(%s)", (list(keyed),))
            }
            fresh = [(k, d) for k, d in keyed.items() if k not in present]
            self._write(fresh)
        return len(fresh)

    def append_events(self, count: int) -> None:
        now = datetime.now(UTC)
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (EVENT_LOCK,))
            events = [
                ("agent.updated", f"agent-{i}", json.dumps({"n": i}), now) for i in range(count)
            ]
            self._events(cur, events)

    def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    def latest(self, model: str, engine: str, limit: int = 50) -> list[Any]:
        return self._all(_LATEST_PG, (model, engine, limit))

    def leaderboard(self, metric: str) -> list[Any]:
        return self._all(_LEADERBOARD_PG, (metric,))

    def leaderboard_fast(self, metric: str) -> list[Any]:
        return self._all(_LEADERBOARD_AGGREGATE, (metric,))

    def history(self, metric: str, model: str, engine: str) -> list[Any]:
        return self._all(_HISTORY_SQL, (metric, model, engine))

    def detail(self, run_id: str) -> tuple[Any, list[Any], list[Any]]:
        c = self.conn
        run = c.execute(_DETAIL_RUN, (run_id,)).fetchone()
        benches = c.execute(_DETAIL_BENCH, (run_id,)).fetchall()
        metrics = c.execute(_DETAIL_METRICS, (run_id,)).fetchall()
        return run, benches, metrics

    def count_passed(self, passed: bool) -> int:
        return int(self._all("SELECT count(*) FROM runs WHERE passed = %s", (passed,))[0][0])

    def tail(self, after: int, page: int = 1000) -> int:
        read = 0
        while True:
            rows = self._all(
                "SELECT id, event_type, source_id, data, created_at FROM events "
                "WHERE id > %s ORDER BY id LIMIT %s",
                (after, page),
            )
            read += len(rows)
            if len(rows) < page:
                return read
            after = rows[-1][0]

    def export(self, directory: Path) -> int:
        written = 0
        with self.conn.transaction(), self.conn.cursor(name="export") as cur:
            cur.itersize = 100
            cur.execute("SELECT id, raw_json FROM runs ORDER BY id")
            for run_id, document in cur:
                write_document(document, directory / run_id / "metrics.json")
                written += 1
        return written


def write_document(document: Any, path: Path) -> None:
    """The same atomic write as the project's export (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=True) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


# --- the hand-written queries (psycopg placeholders; SQLite swaps them for ?) ------

#: A run's hardware headline is its first hardware row, as in the project.
_HEADLINE = "LEFT JOIN hardware h ON h.id = (SELECT min(id) FROM hardware WHERE run_id = r.id)"

_LATEST_COLUMNS = """r.id, r.model, r.engine, r.suite_name, r.timestamp, r.passed,
       r.total_benchmarks, r.passed_count, r.failed_count, r.total_time_seconds,
       r.kitt_version, r.created_at"""

# The page comes from runs alone (PostgreSQL walks idx_runs_model_engine_latest,
# SQLite idx_runs_model_engine_timestamp backwards); only its rows look up
# their first hardware row.
_LATEST_PG = f"""
SELECT p.*, h.gpu_model, h.gpu_count, h.environment_type
FROM (SELECT {_LATEST_COLUMNS} FROM runs r
      WHERE r.model = %s AND r.engine = %s
      ORDER BY r.timestamp DESC NULLS LAST, r.id DESC LIMIT %s) p
LEFT JOIN LATERAL (SELECT gpu_model, gpu_count, environment_type FROM hardware
                   WHERE run_id = p.id ORDER BY id LIMIT 1) h ON true
ORDER BY p.timestamp DESC NULLS LAST, p.id DESC
"""
_LATEST_SQLITE = f"""
SELECT p.*, h.gpu_model, h.gpu_count, h.environment_type
FROM (SELECT {_LATEST_COLUMNS} FROM runs r
      WHERE r.model = ? AND r.engine = ?
      ORDER BY r.timestamp DESC, r.id DESC LIMIT ?) p
LEFT JOIN hardware h ON h.id = (SELECT min(id) FROM hardware WHERE run_id = p.id)
ORDER BY p.timestamp DESC, p.id DESC
"""

_LEADERBOARD_AGGREGATE = """
SELECT model, engine, sum(value_count),
       CASE WHEN sum(value_count) > 0 THEN sum(value_sum) / sum(value_count) END AS avg,  -- x 2^64
       min(value_min), max(value_max), sum(non_finite)
FROM leaderboard_aggregates
WHERE metric_name = %s
GROUP BY model, engine
ORDER BY avg DESC NULLS LAST, model, engine
"""


def _encoded(column: str) -> str:
    return (
        f"CASE WHEN {column} IS NULL THEN '~' "
        f"ELSE CAST(length({column}) AS TEXT) || ':' || {column} END"
    )


_GROUP_SOURCES = (
    "b.test_name",
    "r.model",
    "r.engine",
    "r.suite_name",
    "r.kitt_version",
    "h.gpu_model",
    "h.environment_type",
)


def aggregate_upsert(dialect: str, run_ids: str) -> str:
    """Add the metric rows of the runs ``run_ids`` (SQL yielding ids) to the aggregate."""
    if dialect == "postgresql":
        finite = "m.metric_value < 'Infinity'::float8 AND m.metric_value > '-Infinity'::float8"
        least, greatest = "least", "greatest"
    else:
        finite = "m.metric_value < 9e999 AND m.metric_value > -9e999"
        least, greatest = "min", "max"
    v = f"CASE WHEN {finite} THEN m.metric_value END"
    # As the project: sums kept times 2^-64, values below 2^-960 counted as 0.
    scaled = f"CASE WHEN abs({v}) < {2.0**-960!r} THEN 0.0 ELSE {v} * {2.0**-64!r} END"
    a, e = "leaderboard_aggregates", "excluded"
    sources = ", ".join(_GROUP_SOURCES)
    key = " || ".join(_encoded(c) for c in _GROUP_SOURCES)
    if dialect == "postgresql":
        key = f"md5({key})"  # as the project: btree entries are bounded
    return f"""
INSERT INTO leaderboard_aggregates (metric_name, group_key, test_name, model, engine,
    suite_name, kitt_version, gpu_model, environment_type,
    row_count, value_count, value_sum, value_min, value_max, non_finite)
SELECT m.metric_name, {key}, {sources},
       count(*), count({v}), coalesce(sum({scaled}), 0.0), min({v}), max({v}),
       count(m.metric_value) - count({v})
FROM benchmarks b
JOIN runs r ON r.id = b.run_id
JOIN metrics m ON m.benchmark_id = b.id
LEFT JOIN hardware h ON h.id = (SELECT min(id) FROM hardware WHERE run_id = r.id)
WHERE b.run_id IN ({run_ids}) AND m.metric_name IS NOT NULL
GROUP BY m.metric_name, {sources}
ORDER BY 1, 2
ON CONFLICT (metric_name, group_key) DO UPDATE SET
    row_count = {a}.row_count + {e}.row_count,
    value_count = {a}.value_count + {e}.value_count,
    value_sum = {a}.value_sum + {e}.value_sum,
    value_min = {least}(coalesce({a}.value_min, {e}.value_min),
                        coalesce({e}.value_min, {a}.value_min)),
    value_max = {greatest}(coalesce({a}.value_max, {e}.value_max),
                           coalesce({e}.value_max, {a}.value_max)),
    non_finite = {a}.non_finite + {e}.non_finite
"""


# Non-finite values are left out of the aggregates and counted apart, as in the
# project; PostgreSQL has percentile_cont for the median.
_LEADERBOARD_PG = """
SELECT r.model, r.engine, count(v.v), avg(v.v), min(v.v), max(v.v),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY v.v),
       count(m.metric_value) - count(v.v) AS non_finite
FROM metrics m
JOIN benchmarks b ON b.id = m.benchmark_id
JOIN runs r ON r.id = b.run_id
CROSS JOIN LATERAL (SELECT CASE WHEN m.metric_value < 'Infinity'::float8
                    AND m.metric_value > '-Infinity'::float8 THEN m.metric_value END AS v) v
WHERE m.metric_name = %s
GROUP BY r.model, r.engine
ORDER BY avg(v.v) DESC NULLS LAST, r.model, r.engine
"""

# SQLite has no percentile function: the median comes from row numbers per group.
_LEADERBOARD_SQLITE = """
WITH v AS (
  SELECT r.model AS model, r.engine AS engine, m.metric_value AS raw,
         CASE WHEN m.metric_value < 9e999 AND m.metric_value > -9e999
              THEN m.metric_value END AS v
  FROM metrics m
  JOIN benchmarks b ON b.id = m.benchmark_id
  JOIN runs r ON r.id = b.run_id
  WHERE m.metric_name = ?
), ranked AS (
  SELECT model, engine, raw, v,
         row_number() OVER (PARTITION BY model, engine, v IS NULL ORDER BY v) AS rn,
         count(v) OVER (PARTITION BY model, engine) AS n
  FROM v
)
SELECT model, engine, count(v), avg(v), min(v), max(v),
       avg(CASE WHEN v IS NOT NULL AND rn IN ((n + 1) / 2, (n + 2) / 2) THEN v END),
       count(raw) - count(v) AS non_finite
FROM ranked
GROUP BY model, engine
ORDER BY avg(v) DESC NULLS LAST, model, engine
"""

_HISTORY_SQL = """
SELECT r.id, r.timestamp, b.test_name, b.run_number, m.metric_value
FROM metrics m
JOIN benchmarks b ON b.id = m.benchmark_id
JOIN runs r ON r.id = b.run_id
WHERE m.metric_name = %s AND r.model = %s AND r.engine = %s
ORDER BY r.timestamp NULLS LAST, r.id, b.id, m.id
"""

_DETAIL_RUN = f"""
SELECT r.id, r.model, r.engine, r.suite_name, r.timestamp, r.passed, r.total_benchmarks,
       r.passed_count, r.failed_count, r.total_time_seconds, r.kitt_version, r.created_at,
       h.gpu_model, h.gpu_vram_gb, h.gpu_count, h.cpu_model, h.cpu_cores, h.ram_gb,
       h.environment_type, h.fingerprint
FROM runs r {_HEADLINE}
WHERE r.id = %s
"""
_DETAIL_BENCH = """
SELECT id, test_name, test_version, run_number, passed, timestamp
FROM benchmarks WHERE run_id = %s ORDER BY id
"""
_DETAIL_METRICS = """
SELECT m.benchmark_id, m.metric_name, m.metric_value
FROM metrics m JOIN benchmarks b ON b.id = m.benchmark_id
WHERE b.run_id = %s ORDER BY m.benchmark_id, m.id
"""
