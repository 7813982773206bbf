"""The Pydantic model of a result document: it checks the fields normalised into
columns and reads them; the document itself is kept as it came."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from karr_db.limits import text_problem
from karr_db.models.types import parse_timestamp

#: What the documents are called in error messages.
WHAT = "result document"

#: INTEGER columns are 32-bit on PostgreSQL; a larger count is a bad document.
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


def _check_size(value: int | float) -> int | float:
    if not math.isfinite(value) or not -(2**31) <= round(value) <= 2**31 - 1:
        raise ValueError("must be a finite number that fits a 32-bit integer column")
    return value


#: A size in GB: KITT may write a float; the INTEGER column keeps it rounded.
Size = Annotated[int | float, AfterValidator(_check_size)]


#: Years the normalised timestamp columns can hold on both dialects (SQLite
#: keeps fixed-width text, which needs four-digit years).
MIN_YEAR, MAX_YEAR = 1000, 9999


def _check_timestamp(value: str | None) -> str | None:
    """Accept ISO-8601 text whose UTC reading fits the timestamp columns."""
    if value is None:
        return None
    if not value.strip():
        raise ValueError("timestamp is empty: give an ISO-8601 date and time")
    try:
        parsed = parse_timestamp(value)  # raises ValueError naming the text
    except OverflowError:
        parsed = None
    if parsed is None or not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise ValueError(f"timestamp must fall in the years {MIN_YEAR}-{MAX_YEAR} (UTC)")
    return value


def _check_indexed(value: str | None) -> str | None:
    """Text of an indexed column: bounded so that both dialects store it."""
    if value is not None:
        problem = text_problem(value, indexed=True)
        if problem:
            raise ValueError(problem)
    return value


#: Text of an indexed column (see :mod:`karr_db.limits`).
Indexed = Annotated[str, AfterValidator(_check_indexed)]


class _Part(BaseModel):
    """Strict (no "5" for 5) and open: unknown keys are allowed and ignored here."""

    model_config = ConfigDict(strict=True, extra="allow")


class GpuInfo(_Part):
    model: str | None = None
    vram_gb: Size | None = None
    count: Int32 | None = None


class CpuInfo(_Part):
    model: str | None = None
    cores: Int32 | None = None


class SystemInfo(_Part):
    gpu: GpuInfo | None = None
    cpu: CpuInfo | str | None = None
    ram_gb: Size | None = None
    environment_type: str | None = None
    fingerprint: str | None = None


class BenchmarkResult(_Part):
    test_name: Indexed
    test_version: str | None = None
    run_number: Int32 | None = None
    passed: bool | None = None
    timestamp: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timestamp")
    @classmethod
    def _valid_timestamp(cls, value: str | None) -> str | None:
        return _check_timestamp(value)


class ResultDocument(_Part):
    """The fields of a KITT result document that the layer normalises."""

    model: Indexed
    engine: Indexed
    timestamp: str
    suite_name: Indexed | None = None
    passed: bool | None = None
    total_benchmarks: Int32 | None = None
    passed_count: Int32 | None = None
    failed_count: Int32 | None = None
    total_time_seconds: float | None = None
    kitt_version: str | None = None
    results: list[BenchmarkResult] = Field(default_factory=list)
    system_info: SystemInfo | None = None

    @field_validator("timestamp")
    @classmethod
    def _valid_timestamp(cls, value: str) -> str:
        _check_timestamp(value)
        return value

    @property
    def run_timestamp(self) -> datetime | None:
        return parse_timestamp(self.timestamp)


class FlatMetric(NamedTuple):
    """One numeric metric value under its dotted name.

    A named tuple, not a frozen dataclass: a document has ~200 of them, and
    building frozen dataclasses was a third of validating one (re-deriving
    20,000 adopted runs builds four million).
    """

    name: str
    value: float


@dataclass(frozen=True)
class ValidatedDocument:
    """A document that passed every check, with what saving it needs."""

    document: dict[str, Any]
    model: ResultDocument
    run_id: str
    #: One list of flattened metrics per item of ``results``.
    metrics: list[list[FlatMetric]]
