"""Prebuilt statements: run summaries (by id, by content) and a run's full
detail, built once at import.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from sqlalchemy import (
    BindParameter,
    CompoundSelect,
    Integer,
    Select,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
    union_all,
)

from karr_db.models import Benchmark, Hardware, Metric, Run, RunFingerprint
from karr_db.repositories.results.filters import with_hardware

# Statements select table columns, not ORM attributes: SQLAlchemy matches the
# columns of a statement built per call to its cached compiled form by identity
# then, where annotated attributes cost an SQL comparison each.
_runs, _hardware = Run.__table__.c, Hardware.__table__.c
#: A run summary's columns: the run's own, then its hardware headline.
RUN_COLUMNS = (
    _runs.id,
    _runs.model,
    _runs.engine,
    _runs.suite_name,
    _runs.timestamp,
    _runs.passed,
    _runs.total_benchmarks,
    _runs.passed_count,
    _runs.failed_count,
    _runs.total_time_seconds,
    _runs.kitt_version,
    _runs.created_at,
)
HEADLINE = (_hardware.gpu_model, _hardware.gpu_count, _hardware.environment_type)
SUMMARY_COLUMNS = (*RUN_COLUMNS, *HEADLINE)


def summary_select() -> Select[*tuple[Any, ...]]:
    return with_hardware(select(*SUMMARY_COLUMNS).select_from(Run))


SUMMARY_BY_ID = summary_select().where(Run.id == bindparam("run_id"))
#: The run a content belongs to: the owner its fingerprint names (an adopted
#: run keeps its legacy id), else the run whose id is the fingerprint (a run
#: whose fingerprint row no writer made, e.g. one of an older release).
SUMMARY_BY_CONTENT = summary_select().where(
    Run.id
    == func.coalesce(
        select(RunFingerprint.run_id)
        .where(RunFingerprint.fingerprint == bindparam("fingerprint"))
        .scalar_subquery(),
        bindparam("fingerprint"),
    )
)


# --- a run's full detail ----------------------------------------------------------
#
# Three kinds of rows: the run (with its first hardware row), its benchmarks, its
# metrics. On PostgreSQL, where each statement is a round trip, they come as one
# UNION ALL (``kind`` 0, 1, 2; columns shared where the types agree); on SQLite,
# which runs in-process and fetches those wide rows at twice the cost of three
# narrow statements, as three statements in one snapshot. The run row is the same
# in both; benchmark and metric rows are cut to the narrow statements' columns.

_n = null()
_RUN_ID: BindParameter[str] = bindparam("run_id")
#: The run row: ``kind``, the hardware row's id, a metric id (NULL), the summary's
#: columns, then the hardware columns the summary has not.
DETAIL_RUN = with_hardware(
    select(
        literal_column("0", Integer).label("kind"),
        Hardware.id.label("k1"),
        cast(_n, Integer).label("k2"),
        *SUMMARY_COLUMNS,
        Hardware.gpu_vram_gb,
        Hardware.cpu_model,
        Hardware.cpu_cores,
        Hardware.ram_gb,
        Hardware.fingerprint,
    ).select_from(Run)
).where(Run.id == _RUN_ID)
#: Where the summary's columns, and the hardware row's (in :class:`HardwareInfo`'s
#: field order), sit in a run row.
RUN_SUMMARY = slice(3, 3 + len(SUMMARY_COLUMNS))
RUN_HARDWARE = itemgetter(15, 18, 16, 19, 20, 21, 17, 22)
DETAIL_BENCHMARKS = (
    select(
        Benchmark.id,
        Benchmark.test_name,
        Benchmark.test_version,
        Benchmark.run_number,
        Benchmark.passed,
        Benchmark.timestamp,
    )
    .where(Benchmark.run_id == _RUN_ID)
    .order_by(Benchmark.id)
)
DETAIL_METRICS = (
    select(Metric.benchmark_id, Metric.metric_name, Metric.metric_value)
    .join(Benchmark, Benchmark.id == Metric.benchmark_id)
    .where(Benchmark.run_id == _RUN_ID)
    .order_by(Metric.benchmark_id, Metric.id)
)
#: The three in one statement, ordered by kind, then as the narrow ones are. A
#: benchmark row holds DETAIL_BENCHMARKS' columns at :data:`BENCHMARK_COLUMNS`, a
#: metric row DETAIL_METRICS' at :data:`METRIC_COLUMNS`.
DETAIL: CompoundSelect[*tuple[Any, ...]] = union_all(
    DETAIL_RUN,
    select(
        literal_column("1", Integer),
        Benchmark.id,
        _n,
        Benchmark.test_name,
        Benchmark.test_version,
        _n,
        _n,
        Benchmark.timestamp,
        Benchmark.passed,
        Benchmark.run_number,
        *(_n,) * 13,
    ).where(Benchmark.run_id == _RUN_ID),
    select(
        literal_column("2", Integer),
        Metric.benchmark_id,
        Metric.id,
        Metric.metric_name,
        *(_n,) * 8,
        Metric.metric_value,
        *(_n,) * 10,
    )
    .join(Benchmark, Benchmark.id == Metric.benchmark_id)
    .where(Benchmark.run_id == _RUN_ID),
).order_by(literal_column("kind"), literal_column("k1"), literal_column("k2"))
BENCHMARK_COLUMNS = itemgetter(1, 3, 4, 9, 8, 7)
METRIC_COLUMNS = itemgetter(1, 3, 12)


def metric_rows(*columns: Any) -> Select[Any]:
    """``columns`` of each metric value joined to its benchmark and run: what
    histories, leaderboards and the tidy export read."""
    return (
        select(*columns)
        .select_from(Metric)
        .join(Benchmark, Benchmark.id == Metric.benchmark_id)
        .join(Run, Run.id == Benchmark.run_id)
    )
