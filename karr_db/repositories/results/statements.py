"""Prebuilt statements: run summaries (by id, by content) and the three of a
run's full detail, built once at import.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, bindparam, func, select

from karr_db.models import Benchmark, Hardware, Metric, Run, RunFingerprint
from karr_db.repositories.results.dto import HardwareInfo, RunSummary
from karr_db.repositories.results.filters import with_hardware
from karr_db.repositories.results.page import HEADLINE, RUN_COLUMNS

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


SUMMARY_FIELDS = tuple(RunSummary.model_fields)


_HARDWARE_FIELDS = tuple(HardwareInfo.model_fields)
DETAIL_RUN = with_hardware(
    select(
        *SUMMARY_COLUMNS,
        Hardware.id.label("hw_id"),
        *(getattr(Hardware, f).label(f"hw_{f}") for f in _HARDWARE_FIELDS),
    ).select_from(Run)
).where(Run.id == bindparam("run_id"))
DETAIL_BENCHMARKS = (
    select(
        Benchmark.id,
        Benchmark.test_name,
        Benchmark.test_version,
        Benchmark.run_number,
        Benchmark.passed,
        Benchmark.timestamp,
    )
    .where(Benchmark.run_id == bindparam("run_id"))
    .order_by(Benchmark.id)
)
DETAIL_METRICS = (
    select(Metric.benchmark_id, Metric.metric_name, Metric.metric_value)
    .join(Benchmark, Benchmark.id == Metric.benchmark_id)
    .where(Benchmark.run_id == bindparam("run_id"))
    .order_by(Metric.benchmark_id, Metric.id)
)
