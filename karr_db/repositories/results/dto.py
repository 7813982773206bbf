"""DTOs returned by :class:`karr_db.repositories.results.ResultsRepository`.

They serialise to JSON for a web API. JSON has no NaN or infinities, so in
``model_dump_json()`` a non-finite float is the string ``"NaN"``,
``"Infinity"`` or ``"-Infinity"`` (Pydantic's ``ser_json_inf_nan="strings"``);
validating that JSON back into the DTO gives the floats again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

from pydantic import ConfigDict

from karr_db.repositories._common import DTO


class ResultsDTO(DTO):
    """Base of the results DTOs: non-finite floats serialise as strings."""

    model_config = ConfigDict(ser_json_inf_nan="strings")


class HardwareInfo(ResultsDTO):
    """The hardware snapshot of a run."""

    gpu_model: str | None = None
    gpu_vram_gb: int | None = None
    gpu_count: int | None = None
    cpu_model: str | None = None
    cpu_cores: int | None = None
    ram_gb: int | None = None
    environment_type: str | None = None
    fingerprint: str | None = None


class RunSummary(ResultsDTO):
    """The columns of ``runs`` plus the hardware headline (GPU, environment)."""

    id: str
    model: str | None
    engine: str | None
    suite_name: str | None
    timestamp: datetime | None
    passed: bool | None
    total_benchmarks: int | None
    passed_count: int | None
    failed_count: int | None
    total_time_seconds: float | None
    kitt_version: str | None
    created_at: datetime | None
    gpu_model: str | None = None
    gpu_count: int | None = None
    environment_type: str | None = None


class BenchmarkDetail(ResultsDTO):
    """One benchmark of a run with its metrics by dotted name."""

    id: int
    test_name: str | None
    test_version: str | None
    run_number: int | None
    passed: bool | None
    timestamp: datetime | None
    metrics: dict[str, float | None]


class RunDetail(RunSummary):
    """A run in full: its benchmarks with their metrics, and its hardware."""

    benchmarks: list[BenchmarkDetail]
    hardware: HardwareInfo | None = None


class SaveResult(ResultsDTO):
    """What :meth:`ResultsRepository.save` did: ``created`` is False for a run already stored."""

    run: RunSummary
    created: bool


class AggregateRow(ResultsDTO):
    """One group of a leaderboard.

    ``count``, ``avg``, ``min``, ``max`` and ``median`` cover the finite values
    only; ``non_finite`` counts the NaN and infinite values left out (so a group
    whose values are all NaN has ``count == 0`` and ``avg is None``).
    """

    group: dict[str, str | None]
    test_name: str | None = None
    metric: str
    count: int
    non_finite: int
    avg: float | None
    min: float | None
    max: float | None
    median: float | None


class MetricPoint(ResultsDTO):
    """One value of a metric in its history (non-finite values included), with
    the run's model and engine: a history over several of them is several series."""

    run_id: str
    timestamp: datetime | None
    test_name: str | None
    run_number: int | None
    value: float | None
    model: str | None = None
    engine: str | None = None


class ComparisonRow(ResultsDTO):
    """One metric of one benchmark across the compared runs.

    ``values[i]`` belongs to ``Comparison.run_ids[i]`` (``None`` when that run
    lacks it); ``differences[i]`` is ``values[i] - values[0]`` (``None`` when
    either is missing), so the first run is the baseline.
    """

    test_name: str | None
    run_number: int | None
    metric: str
    values: list[float | None]
    differences: list[float | None]


class Comparison(ResultsDTO):
    """Metric values of two or more runs side by side."""

    run_ids: list[str]
    rows: list[ComparisonRow]


class OutcomeCounts(ResultsDTO):
    """How many runs passed, failed, or have no recorded outcome."""

    runs: int = 0
    passed: int = 0
    failed: int = 0
    unknown: int = 0


class GroupCounts(OutcomeCounts):
    """Outcome counts of the runs of one engine, model or suite (``None``: not recorded)."""

    name: str | None


class RunStats(ResultsDTO):
    """Totals of the runs matching a filter, overall and by engine, model and suite."""

    totals: OutcomeCounts
    by_engine: list[GroupCounts]
    by_model: list[GroupCounts]
    by_suite: list[GroupCounts]


class ImportOutcome(ResultsDTO):
    """What happened to one file of an import."""

    path: str
    status: Literal["imported", "already_present", "rejected"]
    run_id: str | None = None
    reason: str | None = None


class ImportReport(ResultsDTO):
    """Per-file outcomes of an import, in the order the files were taken."""

    outcomes: list[ImportOutcome]

    def with_status(self, status: str) -> list[ImportOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def imported(self) -> list[ImportOutcome]:
        return self.with_status("imported")

    @property
    def already_present(self) -> list[ImportOutcome]:
        return self.with_status("already_present")

    @property
    def rejected(self) -> list[ImportOutcome]:
        return self.with_status("rejected")


class MetricName(ResultsDTO):
    """A stored metric name, with how many values it has (per benchmark test)."""

    metric: str
    test_name: str | None
    count: int


class MetricValueRow(NamedTuple):
    """One metric value with what identifies it: a row of the tidy export.

    A plain tuple, not a DTO: an export streams millions of these.
    """

    run_id: str
    model: str | None
    engine: str | None
    suite_name: str | None
    timestamp: datetime | None
    gpu_model: str | None
    test_name: str | None
    run_number: int | None
    metric: str
    value: float | None


#: The tidy export's column names, in order.
TIDY_COLUMNS: tuple[str, ...] = MetricValueRow._fields
