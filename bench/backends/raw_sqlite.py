"""The SQLite baseline: ``sqlite3`` with hand-written SQL, one transaction per unit of work.

It does the work the project does (content-derived run ids, the run, its
fingerprint, hardware, benchmarks and metrics, the ``run.saved`` event and the
leaderboard aggregate's upkeep) in one ``BEGIN IMMEDIATE`` transaction per
document, with ``executemany``. Reads are single statements in autocommit.
What it leaves out is the project's added value: validation and typed DTOs.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.backends.sql import (
    BENCH_COLUMNS,
    DELETE_RUN,
    DETAIL_BENCH,
    DETAIL_METRICS,
    DETAIL_RUN,
    HISTORY_SQL,
    HW_COLUMNS,
    LATEST_SQLITE,
    LEADERBOARD_AGGREGATE,
    LEADERBOARD_SQLITE,
    QUICK_TESTS_OF_RUN,
    RUN_COLUMNS,
    aggregate_upsert,
    content_id,
    flatten,
    hardware_tuple,
    leaderboard_rows_no_median,
    qmark,
    sqlite_time,
    subtract_run,
    utc,
    write_document,
)

_OWNER = "SELECT 1 FROM run_fingerprints WHERE fingerprint = ?"
# Placeholders swapped once, not per call.
_AGGREGATE = qmark(LEADERBOARD_AGGREGATE)
_HISTORY = qmark(HISTORY_SQL)
_DETAIL_RUN = qmark(DETAIL_RUN)
_DETAIL_BENCH = qmark(DETAIL_BENCH)
_DETAIL_METRICS = qmark(DETAIL_METRICS)
_ROWS_NO_MEDIAN = qmark(leaderboard_rows_no_median("sqlite"))


class RawSqlite:
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
            sqlite_time(utc(doc["timestamp"])),
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
                    sqlite_time(utc(result.get("timestamp"))),
                    now,
                )
            )
            metrics.extend((bench_id, n, v) for n, v in flatten(result.get("metrics", {})))
        return run, benches, metrics

    def _next_benchmark_id(self) -> int:
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'benchmarks'")
        found = row.fetchone()
        return (found[0] if found else 0) + 1

    def _write(self, docs: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Insert documents inside the open write transaction (explicit benchmark ids)."""
        now = sqlite_time(datetime.now(UTC))
        assert now is not None
        next_id = self._next_benchmark_id()
        runs, hardware, benches, metrics, events = [], [], [], [], []
        for run_id, doc in docs:
            run, b, m = self._rows(doc, run_id, now, next_id)
            next_id += len(b)
            runs.append(run)
            hw = hardware_tuple(doc)
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
        c.executemany(f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ({','.join('?' * 13)})", runs)
        c.executemany(
            "INSERT INTO run_fingerprints (fingerprint, run_id) VALUES (?, ?)",
            [(run[0], run[0]) for run in runs],
        )
        c.executemany(f"INSERT INTO hardware ({HW_COLUMNS}) VALUES ({','.join('?' * 9)})", hardware)
        c.executemany(
            f"INSERT INTO benchmarks ({BENCH_COLUMNS}) VALUES ({','.join('?' * 8)})", benches
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
        run_id = content_id(doc)
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            if c.execute(_OWNER, (run_id,)).fetchone() is None:
                self._write([(run_id, doc)])
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return run_id

    def import_batch(self, docs: Iterable[dict[str, Any]]) -> int:
        """One transaction: skip present runs, insert the rest in bulk."""
        keyed = {content_id(doc): doc for doc in docs}
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            ids = list(keyed)
            present: set[str] = set()
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                present.update(
                    r[0]
                    for r in c.execute(
                        f"SELECT fingerprint FROM run_fingerprints WHERE fingerprint IN ({marks})",
                        chunk,
                    )
                )
            fresh = [(k, d) for k, d in keyed.items() if k not in present]
            self._write(fresh)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return len(fresh)

    def save_many(self, docs: list[dict[str, Any]]) -> int:
        """``save_many``'s baseline: one transaction, the present runs skipped."""
        return self.import_batch(docs)

    def append_events(self, count: int) -> None:
        now = sqlite_time(datetime.now(UTC))
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        c.executemany(
            "INSERT INTO events (event_type, source_id, data, created_at) VALUES (?, ?, ?, ?)",
            [("agent.updated", f"agent-{i}", json.dumps({"n": i}), now) for i in range(count)],
        )
        c.execute("COMMIT")

    def delete(self, run_id: str) -> None:
        """Delete a run (rows by cascade), its aggregate contribution first; refused while
        a quick test points at it, as the project's."""
        c = self.conn

        def fetch(sql: str, params: Sequence[Any]) -> list[Any]:
            return c.execute(qmark(sql), params).fetchall()

        def many(sql: str, rows: list[tuple[Any, ...]]) -> None:
            c.executemany(qmark(sql), rows)

        c.execute("BEGIN IMMEDIATE")
        try:
            if fetch(QUICK_TESTS_OF_RUN, (run_id,)):
                raise RuntimeError(f"run {run_id} is still referenced by quick tests")
            subtract_run("sqlite", fetch, many, run_id)
            if c.execute(qmark(DELETE_RUN), (run_id,)).rowcount == 0:
                raise KeyError(run_id)
            c.execute(
                "INSERT INTO events (event_type, source_id, data, created_at) VALUES (?, ?, ?, ?)",
                ("run.deleted", run_id, None, sqlite_time(datetime.now(UTC))),
            )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    # reads

    def latest(self, model: str, engine: str, limit: int = 50) -> list[Any]:
        return self.conn.execute(LATEST_SQLITE, (model, engine, limit)).fetchall()

    def leaderboard(self, metric: str) -> list[Any]:
        return self.conn.execute(LEADERBOARD_SQLITE, (metric,)).fetchall()

    def leaderboard_fast(self, metric: str) -> list[Any]:
        return self.conn.execute(_AGGREGATE, (metric,)).fetchall()

    def history(self, metric: str, model: str, engine: str) -> list[Any]:
        return self.conn.execute(_HISTORY, (metric, model, engine)).fetchall()

    def detail(self, run_id: str) -> tuple[Any, list[Any], list[Any]]:
        c = self.conn
        run = c.execute(_DETAIL_RUN, (run_id,)).fetchone()
        benches = c.execute(_DETAIL_BENCH, (run_id,)).fetchall()
        metrics = c.execute(_DETAIL_METRICS, (run_id,)).fetchall()
        return run, benches, metrics

    def empty_unit(self, _: object = None) -> None:
        """The least a raw client sends for a user action: one statement."""
        self.conn.execute("SELECT 1").fetchone()

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
                utc(row[4])
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

    def leaderboard_rows(self, metric: str) -> list[Any]:
        """count/avg/min/max from the rows (the reference schema has no aggregate)."""
        return self.conn.execute(_ROWS_NO_MEDIAN, (metric,)).fetchall()
