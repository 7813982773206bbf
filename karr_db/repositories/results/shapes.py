"""The results DTOs built from row tuples (:func:`~karr_db.repositories._common.row_builder`):
the database typed every value already, so a row needs no validation."""

from __future__ import annotations

from karr_db.repositories._common import row_builder
from karr_db.repositories.results.dto import (
    BenchmarkDetail,
    HardwareInfo,
    MetricPoint,
    RunDetail,
    RunSummary,
)

__all__ = ["SUMMARY_INDEX", "benchmark", "detail", "hardware", "point", "summary"]

summary = row_builder(RunSummary)
detail = row_builder(RunDetail, (*RunSummary.model_fields, "benchmarks", "hardware"))
benchmark = row_builder(BenchmarkDetail)
hardware = row_builder(HardwareInfo)
#: Where each order field sits in a summary row (its cursor value is read from there).
SUMMARY_INDEX = {name: index for index, name in enumerate(RunSummary.model_fields)}
point = row_builder(MetricPoint)
