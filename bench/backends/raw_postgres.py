"""The PostgreSQL baseline: psycopg 3 with hand-written SQL, as a raw client sends it.

Writes open one transaction per unit of work and take the event log's advisory
lock as the project's do; rows go in by ``COPY``. Single reads run in
autocommit: one round trip per statement, no BEGIN/COMMIT. What it leaves out
is the project's added value: validation and typed DTOs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.backends.sql import (
    BENCH_COLUMNS,
    DELETE_RUN,
    DETAIL_BENCH,
    DETAIL_METRICS,
    DETAIL_RUN,
    EVENT_LOCK,
    HISTORY_SQL,
    HW_COLUMNS,
    LATEST_PG,
    LEADERBOARD_AGGREGATE,
    LEADERBOARD_PG,
    QUICK_TESTS_OF_RUN,
    RUN_COLUMNS,
    aggregate_upsert,
    content_id,
    flatten,
    hardware_tuple,
    leaderboard_rows_no_median,
    subtract_run,
    utc,
    write_document,
)

_OWNER = "SELECT 1 FROM run_fingerprints WHERE fingerprint = %s"
_ROWS_NO_MEDIAN = leaderboard_rows_no_median("postgresql")


class RawPostgres:
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
            with cur.copy(f"COPY runs ({RUN_COLUMNS}) FROM STDIN") as copy:
                for run_id, doc in docs:
                    copy.write_row(
                        (
                            run_id,
                            doc["model"],
                            doc["engine"],
                            doc.get("suite_name"),
                            utc(doc["timestamp"]),
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
            with cur.copy("COPY run_fingerprints (fingerprint, run_id) FROM STDIN") as copy:
                for run_id, _doc in docs:
                    copy.write_row((run_id, run_id))
            with cur.copy(f"COPY hardware ({HW_COLUMNS}) FROM STDIN") as copy:
                for run_id, doc in docs:
                    hw = hardware_tuple(doc)
                    if hw is not None:
                        copy.write_row((run_id, *hw))
            metrics: list[tuple[int, str, float]] = []
            with cur.copy(f"COPY benchmarks ({BENCH_COLUMNS}) FROM STDIN") as copy:
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
                                utc(result.get("timestamp")),
                                now,
                            )
                        )
                        metrics.extend(
                            (bench_id, n, v) for n, v in flatten(result.get("metrics", {}))
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
        run_id = content_id(doc)
        with self.conn.transaction():
            found = self.conn.execute(_OWNER, (run_id,)).fetchone()
            if found is None:
                self._write([(run_id, doc)])
        return run_id

    def import_batch(self, docs: Iterable[dict[str, Any]]) -> int:
        keyed = {content_id(doc): doc for doc in docs}
        with self.conn.transaction():
            present = {
                r[0]
                for r in self.conn.execute(
                    "SELECT fingerprint FROM run_fingerprints WHERE fingerprint = ANY(%s)",
                    (list(keyed),),
                )
            }
            fresh = [(k, d) for k, d in keyed.items() if k not in present]
            self._write(fresh)
        return len(fresh)

    def save_many(self, docs: list[dict[str, Any]]) -> int:
        """``save_many``'s baseline: one transaction, the present runs skipped."""
        return self.import_batch(docs)

    def append_events(self, count: int) -> None:
        now = datetime.now(UTC)
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (EVENT_LOCK,))
            events = [
                ("agent.updated", f"agent-{i}", json.dumps({"n": i}), now) for i in range(count)
            ]
            self._events(cur, events)

    def delete(self, run_id: str) -> None:
        """Delete a run (rows by cascade), its aggregate contribution first, under the
        event log's lock; refused while a quick test points at it, as the project's."""
        c = self.conn

        def fetch(sql: str, params: Sequence[Any]) -> list[Any]:
            return c.execute(sql, params).fetchall()

        def many(sql: str, rows: list[tuple[Any, ...]]) -> None:
            if rows:
                with c.cursor() as cur:
                    cur.executemany(sql, rows)

        with c.transaction(), c.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (EVENT_LOCK,))
            if fetch(QUICK_TESTS_OF_RUN, (run_id,)):
                raise RuntimeError(f"run {run_id} is still referenced by quick tests")
            subtract_run("postgresql", fetch, many, run_id)
            if cur.execute(DELETE_RUN, (run_id,)).rowcount == 0:
                raise KeyError(run_id)
            cur.execute(
                "WITH e AS (INSERT INTO events (event_type, source_id, data, created_at) "
                "VALUES ('run.deleted', %s, NULL, now()) RETURNING id) "
                "SELECT pg_notify('karr_events', id::text) FROM e",
                (run_id,),
            )

    def leaderboard_rows(self, metric: str) -> list[Any]:
        """count/avg/min/max from the rows (the reference schema has no aggregate)."""
        return self._all(_ROWS_NO_MEDIAN, (metric,))

    def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    def latest(self, model: str, engine: str, limit: int = 50) -> list[Any]:
        return self._all(LATEST_PG, (model, engine, limit))

    def leaderboard(self, metric: str) -> list[Any]:
        return self._all(LEADERBOARD_PG, (metric,))

    def leaderboard_fast(self, metric: str) -> list[Any]:
        return self._all(LEADERBOARD_AGGREGATE, (metric,))

    def history(self, metric: str, model: str, engine: str) -> list[Any]:
        return self._all(HISTORY_SQL, (metric, model, engine))

    def detail(self, run_id: str) -> tuple[Any, list[Any], list[Any]]:
        c = self.conn
        run = c.execute(DETAIL_RUN, (run_id,)).fetchone()
        benches = c.execute(DETAIL_BENCH, (run_id,)).fetchall()
        metrics = c.execute(DETAIL_METRICS, (run_id,)).fetchall()
        return run, benches, metrics

    def empty_unit(self, _: object = None) -> None:
        """The least a raw client sends for a user action: one autocommit statement."""
        self._all("SELECT 1", ())

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
