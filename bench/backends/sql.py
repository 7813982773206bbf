"""The hand-written SQL of the raw baselines, and the row building both of them share.

The statements are the best plain SQL for each answer on the project's schema
(its extra indexes and the leaderboard aggregate included), not the project's
own statements: the latest runs join the hardware headline after the limit,
the leaderboard median is ``percentile_cont`` on PostgreSQL, and the
count/avg/min/max leaderboard is one grouped read of the aggregate. Written with
psycopg placeholders (``%s``); :func:`qmark` gives SQLite's.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from karr_db.documents import RUN_ID_NAMESPACE

#: Same key as the project's event log lock (see karr_db.dialects.postgresql).
EVENT_LOCK = 0x4B455654


def content_id(document: dict[str, Any]) -> str:
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return str(uuid.uuid5(RUN_ID_NAMESPACE, text))


def flatten(metrics: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    for key, value in metrics.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        elif isinstance(value, bool):
            yield f"{prefix}{key}", 1.0 if value else 0.0
        elif isinstance(value, int | float):
            yield f"{prefix}{key}", float(value)


def utc(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds") + "+00:00"


def hardware_tuple(doc: dict[str, Any]) -> tuple[Any, ...] | None:
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


RUN_COLUMNS = (
    "id, model, engine, suite_name, timestamp, passed, total_benchmarks, passed_count, "
    "failed_count, total_time_seconds, kitt_version, raw_json, created_at"
)
HW_COLUMNS = (
    "run_id, gpu_model, gpu_vram_gb, gpu_count, cpu_model, cpu_cores, ram_gb, "
    "environment_type, fingerprint"
)
BENCH_COLUMNS = "id, run_id, test_name, test_version, run_number, passed, timestamp, created_at"


def qmark(sql: str) -> str:
    """The statement with SQLite's placeholders."""
    return sql.replace("%s", "?")


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
HEADLINE = "LEFT JOIN hardware h ON h.id = (SELECT min(id) FROM hardware WHERE run_id = r.id)"

LATEST_COLUMNS = """r.id, r.model, r.engine, r.suite_name, r.timestamp, r.passed,
       r.total_benchmarks, r.passed_count, r.failed_count, r.total_time_seconds,
       r.kitt_version, r.created_at"""

# The page comes from runs alone (PostgreSQL walks idx_runs_model_engine_latest,
# SQLite idx_runs_model_engine_timestamp backwards); only its rows look up
# their first hardware row.
LATEST_PG = f"""
SELECT p.*, h.gpu_model, h.gpu_count, h.environment_type
FROM (SELECT {LATEST_COLUMNS} FROM runs r
      WHERE r.model = %s AND r.engine = %s
      ORDER BY r.timestamp DESC NULLS LAST, r.id DESC LIMIT %s) p
LEFT JOIN LATERAL (SELECT gpu_model, gpu_count, environment_type FROM hardware
                   WHERE run_id = p.id ORDER BY id LIMIT 1) h ON true
ORDER BY p.timestamp DESC NULLS LAST, p.id DESC
"""
LATEST_SQLITE = f"""
SELECT p.*, h.gpu_model, h.gpu_count, h.environment_type
FROM (SELECT {LATEST_COLUMNS} FROM runs r
      WHERE r.model = ? AND r.engine = ?
      ORDER BY r.timestamp DESC, r.id DESC LIMIT ?) p
LEFT JOIN hardware h ON h.id = (SELECT min(id) FROM hardware WHERE run_id = p.id)
ORDER BY p.timestamp DESC, p.id DESC
"""

LEADERBOARD_AGGREGATE = """
SELECT model, engine, sum(value_count),
       CASE WHEN sum(value_count) > 0 THEN sum(value_sum) / sum(value_count) END AS avg,  -- x 2^64
       min(value_min), max(value_max), sum(non_finite),
       max(max(CASE WHEN value_count > 0 AND (value_min IS NULL OR value_max IS NULL)
                    THEN 1 ELSE 0 END)) OVER () AS unknown
FROM leaderboard_aggregates
WHERE metric_name = %s
GROUP BY model, engine
ORDER BY avg DESC NULLS LAST, model, engine
"""


def encoded(column: str) -> str:
    return (
        f"CASE WHEN {column} IS NULL THEN '~' "
        f"ELSE CAST(length({column}) AS TEXT) || ':' || {column} END"
    )


GROUP_SOURCES = (
    "b.test_name",
    "r.model",
    "r.engine",
    "r.suite_name",
    "r.kitt_version",
    "h.gpu_model",
    "h.environment_type",
)


def contributions(dialect: str, where: str) -> str:
    """Per (metric, group): the aggregate's columns over the metric rows matching ``where``."""
    finite = (
        "m.metric_value < 'Infinity'::float8 AND m.metric_value > '-Infinity'::float8"
        if dialect == "postgresql"
        else "m.metric_value < 9e999 AND m.metric_value > -9e999"
    )
    v = f"CASE WHEN {finite} THEN m.metric_value END"
    # As the project: sums kept times 2^-64, values below 2^-960 counted as 0.
    scaled = f"CASE WHEN abs({v}) < {2.0**-960!r} THEN 0.0 ELSE {v} * {2.0**-64!r} END"
    sources = ", ".join(GROUP_SOURCES)
    key = " || ".join(encoded(c) for c in GROUP_SOURCES)
    if dialect == "postgresql":
        key = f"md5({key})"  # as the project: btree entries are bounded
    return f"""
SELECT m.metric_name, {key}, {sources},
       count(*), count({v}), coalesce(sum({scaled}), 0.0), min({v}), max({v}),
       count(m.metric_value) - count({v})
FROM benchmarks b
JOIN runs r ON r.id = b.run_id
JOIN metrics m ON m.benchmark_id = b.id
LEFT JOIN hardware h ON h.id = (SELECT min(id) FROM hardware WHERE run_id = r.id)
WHERE {where} AND m.metric_name IS NOT NULL
GROUP BY m.metric_name, {sources}
ORDER BY 1, 2
"""


def aggregate_upsert(dialect: str, run_ids: str) -> str:
    """Add the metric rows of the runs ``run_ids`` (SQL yielding ids) to the aggregate."""
    least, greatest = ("least", "greatest") if dialect == "postgresql" else ("min", "max")
    a, e = "leaderboard_aggregates", "excluded"
    return f"""
INSERT INTO leaderboard_aggregates (metric_name, group_key, test_name, model, engine,
    suite_name, kitt_version, gpu_model, environment_type,
    row_count, value_count, value_sum, value_min, value_max, non_finite)
{contributions(dialect, f"b.run_id IN ({run_ids})")}
ON CONFLICT (metric_name, group_key) DO UPDATE SET
    row_count = {a}.row_count + {e}.row_count,
    value_count = {a}.value_count + {e}.value_count,
    value_sum = {a}.value_sum + {e}.value_sum,
    value_min = CASE WHEN {a}.value_count > 0 AND {a}.value_min IS NULL THEN NULL
                ELSE {least}(coalesce({a}.value_min, {e}.value_min),
                             coalesce({e}.value_min, {a}.value_min)) END,
    value_max = CASE WHEN {a}.value_count > 0 AND {a}.value_max IS NULL THEN NULL
                ELSE {greatest}(coalesce({a}.value_max, {e}.value_max),
                                coalesce({e}.value_max, {a}.value_max)) END,
    non_finite = {a}.non_finite + {e}.non_finite
"""


# --- delete with cascade: the run's rows go by ON DELETE CASCADE; the aggregate
# loses their contribution first (read while they exist); an extreme the run
# reached becomes unknown (NULL while value_count > 0), and reads of such a group
# go to the rows.

SUBTRACT = """
UPDATE leaderboard_aggregates SET row_count = row_count - %s,
    value_count = value_count - %s,
    value_sum = CASE WHEN value_count = %s THEN 0.0 ELSE value_sum - %s END,
    value_min = CASE WHEN value_count = %s OR value_min >= %s THEN NULL ELSE value_min END,
    value_max = CASE WHEN value_count = %s OR value_max <= %s THEN NULL ELSE value_max END,
    non_finite = non_finite - %s
WHERE metric_name = %s AND group_key = %s
"""
DROP_EMPTY = (
    "DELETE FROM leaderboard_aggregates WHERE metric_name = %s AND group_key = %s "
    "AND row_count <= 0"
)
QUICK_TESTS_OF_RUN = "SELECT id FROM quick_tests WHERE result_id = %s ORDER BY id"
DELETE_RUN = "DELETE FROM runs WHERE id = %s"


# Non-finite values are left out of the aggregates and counted apart, as in the
# project; PostgreSQL has percentile_cont for the median.
LEADERBOARD_PG = """
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
LEADERBOARD_SQLITE = """
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

#: The first page of a history of the largest size, PAGE_LIMIT (1,000) points: the
#: project side asks ``metric_history`` for that page.
HISTORY_SQL = """
SELECT r.id, r.timestamp, b.test_name, b.run_number, m.metric_value
FROM metrics m
JOIN benchmarks b ON b.id = m.benchmark_id
JOIN runs r ON r.id = b.run_id
WHERE m.metric_name = %s AND r.model = %s AND r.engine = %s
ORDER BY r.timestamp NULLS LAST, r.id, b.id, m.id
LIMIT 1000
"""

DETAIL_RUN = f"""
SELECT r.id, r.model, r.engine, r.suite_name, r.timestamp, r.passed, r.total_benchmarks,
       r.passed_count, r.failed_count, r.total_time_seconds, r.kitt_version, r.created_at,
       h.gpu_model, h.gpu_vram_gb, h.gpu_count, h.cpu_model, h.cpu_cores, h.ram_gb,
       h.environment_type, h.fingerprint
FROM runs r {HEADLINE}
WHERE r.id = %s
"""
DETAIL_BENCH = """
SELECT id, test_name, test_version, run_number, passed, timestamp
FROM benchmarks WHERE run_id = %s ORDER BY id
"""
DETAIL_METRICS = """
SELECT m.benchmark_id, m.metric_name, m.metric_value
FROM metrics m JOIN benchmarks b ON b.id = m.benchmark_id
WHERE b.run_id = %s ORDER BY m.benchmark_id, m.id
"""


def leaderboard_rows_no_median(dialect: str) -> str:
    """count/avg/min/max from the rows: the reference schema's answer (it has no aggregate)."""
    inf = "'Infinity'::float8" if dialect == "postgresql" else "9e999"
    v = f"CASE WHEN m.metric_value < {inf} AND m.metric_value > -{inf} THEN m.metric_value END"
    return f"""
SELECT r.model, r.engine, count({v}), avg({v}), min({v}), max({v}),
       count(m.metric_value) - count({v}) AS non_finite
FROM metrics m
JOIN benchmarks b ON b.id = m.benchmark_id
JOIN runs r ON r.id = b.run_id
WHERE m.metric_name = %s
GROUP BY r.model, r.engine
ORDER BY avg({v}) DESC NULLS LAST, r.model, r.engine
"""


Fetch = Callable[[str, Sequence[Any]], list[Any]]
Many = Callable[[str, list[tuple[Any, ...]]], None]


def subtract_run(dialect: str, fetch: Fetch, many: Many, run_id: str) -> None:
    """Take a run's contribution out of the aggregate (before its rows go)."""
    gone = fetch(contributions(dialect, "b.run_id = %s"), [run_id])
    many(
        SUBTRACT,
        [(g[9], g[10], g[10], g[11], g[10], g[12], g[10], g[13], g[14], g[0], g[1]) for g in gone],
    )
    many(DROP_EMPTY, [(g[0], g[1]) for g in gone])
