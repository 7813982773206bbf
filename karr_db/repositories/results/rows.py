"""What the rows a save writes are made of: each table's insert columns, in order,
the columns' own bind conversions (:func:`bind_processor`) and a document's
``hardware`` row (:func:`hardware_row`).

A save (:class:`~karr_db.repositories.results.ResultsRepository`) and
re-derivation (:mod:`karr_db.derive`) both build their driver-ready tuples from
these, so re-derivation writes exactly the rows a fresh save would.
"""

from __future__ import annotations

from typing import Any

from karr_db.documents import ValidatedDocument


def bind_processor(column: Any, dialect: Any) -> Any:
    """The column type's bind conversion for ``dialect`` (identity when it has none)."""
    process = column.type.bind_processor(dialect)
    return process if process is not None else _identity


def _identity(value: Any) -> Any:
    return value


RUN_INSERT_COLUMNS = (
    "id",
    "model",
    "engine",
    "suite_name",
    "timestamp",
    "passed",
    "total_benchmarks",
    "passed_count",
    "failed_count",
    "total_time_seconds",
    "kitt_version",
    "raw_json",
    "created_at",
)
HARDWARE_INSERT_COLUMNS = (
    "run_id",
    "gpu_model",
    "gpu_vram_gb",
    "gpu_count",
    "cpu_model",
    "cpu_cores",
    "ram_gb",
    "environment_type",
    "fingerprint",
)
BENCHMARK_INSERT_COLUMNS = (
    "run_id",
    "test_name",
    "test_version",
    "run_number",
    "passed",
    "timestamp",
    "created_at",
)
METRIC_INSERT_COLUMNS = ("benchmark_id", "metric_name", "metric_value")


def _whole(value: int | float | None) -> int | None:
    return None if value is None else round(value)


def hardware_row(doc: ValidatedDocument) -> tuple[Any, ...] | None:
    """The ``hardware`` row (in :data:`HARDWARE_INSERT_COLUMNS` order) a save of ``doc``
    writes, or ``None`` when it has no ``system_info``; re-derivation uses it too."""
    info = doc.model.system_info
    if info is None:
        return None
    gpu, cpu = info.gpu, info.cpu
    return (
        doc.run_id,
        gpu.model if gpu else None,
        _whole(gpu.vram_gb) if gpu else None,
        gpu.count if gpu else None,
        cpu if isinstance(cpu, str) else (cpu.model if cpu else None),
        None if cpu is None or isinstance(cpu, str) else cpu.cores,
        _whole(info.ram_gb),
        info.environment_type,
        info.fingerprint,
    )
