"""Tidy data out: one row per metric value, as CSV or Parquet, for notebooks.

The columns (:data:`~karr_db.repositories.results.dto.TIDY_COLUMNS`) are the
run id, model, engine, suite, run timestamp, GPU, benchmark test, run number,
metric name and value: what pandas, polars or DuckDB group and pivot on.
Rows are streamed from the database and written in chunks, so memory does not
grow with the number of values. Parquet needs pyarrow, the optional extra
``karr-db[analysis]``; CSV needs nothing.

Non-finite values: CSV writes ``NaN``, ``inf`` and ``-inf`` (which pandas,
polars and DuckDB all read back as floats) and an empty field for a missing
value; Parquet stores them as the doubles they are.

Reading the files::

    pandas.read_parquet("values.parquet")            # or read_csv("values.csv")
    polars.read_parquet("values.parquet")            # or read_csv
    duckdb.sql("SELECT * FROM 'values.parquet'")     # or 'values.csv'
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, Literal, TextIO

from sqlalchemy.orm import Session

from karr_db.errors import InvalidQueryError, KarrError
from karr_db.repositories.results import ResultsRepository, RunFilter
from karr_db.repositories.results.dto import TIDY_COLUMNS, MetricValueRow

__all__ = [
    "FORMATS",
    "TIDY_COLUMNS",
    "MissingExtraError",
    "export_metric_values",
    "write_csv",
    "write_parquet",
]

Format = Literal["csv", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "parquet")
#: Rows turned from Python tuples into Arrow columns at a time (Arrow columns hold
#: a row in a fraction of a tuple's memory), and rows per Parquet row group.
PARQUET_CHUNK = 5_000
PARQUET_ROW_GROUP = 50_000


class MissingExtraError(KarrError):
    """An optional dependency is not installed; the message says which extra brings it."""

    def __init__(self, feature: str, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{feature} needs {package}, which is not installed: "
            f"pip install 'karr-db[{extra}]' (or choose --format csv)"
        )


def _csv_value(value: float | None) -> str:
    if value is None:
        return ""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def write_csv(rows: Iterable[MetricValueRow], out: TextIO) -> int:
    """Write a header and one line per row; how many rows were written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TIDY_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(
            (
                row.run_id,
                row.model,
                row.engine,
                row.suite_name,
                row.timestamp.isoformat() if row.timestamp is not None else None,
                row.gpu_model,
                row.test_name,
                row.run_number,
                row.metric,
                _csv_value(row.value),
            )
        )
        count += 1
    return count


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtraError("Parquet export", "pyarrow", "analysis") from None
    return pa, pq


def write_parquet(rows: Iterable[MetricValueRow], path: str | Path) -> int:
    """Write the rows to a Parquet file in row groups of :data:`PARQUET_ROW_GROUP`;
    how many rows were written. Raises :class:`MissingExtraError` without pyarrow."""
    pa, pq = _pyarrow()
    schema = pa.schema(
        [
            ("run_id", pa.string()),
            ("model", pa.string()),
            ("engine", pa.string()),
            ("suite_name", pa.string()),
            ("timestamp", pa.timestamp("us", tz="UTC")),
            ("gpu_model", pa.string()),
            ("test_name", pa.string()),
            ("run_number", pa.int64()),
            ("metric", pa.string()),
            ("value", pa.float64()),
        ]
    )
    count = 0
    iterator: Iterator[MetricValueRow] = iter(rows)
    pending: list[Any] = []  # Arrow record batches of the row group being built
    pending_rows = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        while chunk := list(islice(iterator, PARQUET_CHUNK)):
            columns = list(zip(*chunk, strict=True))
            pending.append(pa.RecordBatch.from_arrays(columns, schema=schema))
            pending_rows += len(chunk)
            count += len(chunk)
            del chunk, columns
            if pending_rows >= PARQUET_ROW_GROUP:
                writer.write_table(pa.Table.from_batches(pending, schema=schema))
                pending, pending_rows = [], 0
        if pending or count == 0:  # no rows: the schema alone, still a readable file
            writer.write_table(pa.Table.from_batches(pending, schema=schema))
    return count


def export_metric_values(
    session: Session,
    target: str | Path | TextIO,
    *,
    format: Format = "csv",
    filters: RunFilter | Mapping[str, Any] | None = None,
    run_ids: Sequence[str] | None = None,
) -> int:
    """Every metric value of the matching runs (or of ``run_ids``) to ``target``
    (a path, or a text stream for CSV), streamed; how many rows were written."""
    if format not in FORMATS:
        raise InvalidQueryError(f"unknown export format {format!r}; use one of {FORMATS}")
    if format == "parquet":
        _pyarrow()  # fail before reading anything
    rows = ResultsRepository(session.connection()).iter_metric_values(filters, run_ids=run_ids)
    if not isinstance(target, str | Path):
        if format == "parquet":
            raise InvalidQueryError("Parquet needs a file path, not a stream")
        return write_csv(rows, target)
    # Written beside the target and renamed at the end: an interrupted or
    # failed export leaves no half-written file under the real name.
    final = Path(target)
    partial = final.with_name(f".{final.name}.partial")
    try:
        if format == "parquet":
            count = write_parquet(rows, partial)
        else:
            with partial.open("w", encoding="utf-8", newline="") as out:
                count = write_csv(rows, out)
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return count
