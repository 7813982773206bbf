"""Reading stored runs a batch at a time and inserting the rows they lack."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from karr_db.derive.common import (
    BATCH_SIZE,
    EXAMPLES,
    DeriveReport,
    Progress,
    _instant,
    _placeholders,
    _raw_json_text,
    _stash,
)
from karr_db.derive.parse import _Derived, _parse
from karr_db.dialects import for_connection
from karr_db.models import Benchmark
from karr_db.models.types import parse_timestamp, utcnow
from karr_db.repositories.results.rows import (
    BENCHMARK_INSERT_COLUMNS,
    HARDWARE_INSERT_COLUMNS,
    METRIC_INSERT_COLUMNS,
    bind_processor,
)

logger = logging.getLogger(__name__)

#: SQLite page cache while deriving, in KiB (the default is 2,000).
SQLITE_CACHE_KIB = 256 * 1024


@dataclass
class _Stored:
    """One stored run as derivation sees it."""

    id: str
    created_at: datetime | None
    document: _Derived | None = None
    problem: str | None = None
    #: (id, test name) of its benchmark rows, in id order.
    benchmarks: list[tuple[int, str | None]] = field(default_factory=list)
    metric_names: dict[int, set[str]] = field(default_factory=dict)
    has_hardware: bool = False

    def age(self) -> tuple[Any, ...]:
        """Oldest first: created_at (unknown last), first benchmark id, id."""
        first = self.benchmarks[0][0] if self.benchmarks else None
        return (
            self.created_at is None,
            self.created_at or datetime.min,
            first is None,
            first or 0,
            self.id,
        )


def _batches(connection: Connection, batch_size: int) -> Iterator[list[tuple[Any, ...]]]:
    """(id, created_at, raw_json text) of every run, a batch at a time, in the order their
    benchmark rows were written (runs without any last, then by id).

    That order, not the run ids' (random hex for the earlier system), keeps each
    batch's benchmark ids together: the existing metric names are read, and the new
    metric rows go into ``idx_metrics_benchmark_id``, a few neighbouring pages at a
    time rather than all over an index of millions of entries.
    """
    order = connection.exec_driver_sql(
        "SELECT r.id FROM runs r LEFT JOIN "
        "(SELECT run_id, min(id) AS first FROM benchmarks GROUP BY run_id) b ON b.run_id = r.id "
        "ORDER BY b.first IS NULL, b.first, r.id"
    ).all()
    ids = [row[0] for row in order]
    for start in range(0, len(ids), batch_size):
        batch = _read(connection, ids[start : start + batch_size])
        if batch:
            yield batch


def _read(connection: Connection, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """(id, created_at, raw_json text) of the runs ``ids``, in that order; a run deleted
    since the ids were read is left out."""
    sql = f"SELECT id, created_at, {_raw_json_text(connection)} FROM runs WHERE id IN "
    rows = {
        r[0]: r
        for r in connection.exec_driver_sql(
            f"{sql}({_placeholders(connection, len(ids))})", tuple(ids)
        ).all()
    }
    return [(r[0], _instant(r[1]), r[2]) for r in (rows.get(i) for i in ids) if r is not None]


def _load(
    connection: Connection, rows: Sequence[tuple[Any, ...]], parsed: Sequence[_Derived | str]
) -> list[_Stored]:
    """The batch's documents and their existing derived rows (three statements)."""
    runs = {r[0]: _Stored(r[0], r[1]) for r in rows}
    for (run_id, _, _), result in zip(rows, parsed, strict=True):
        stored = runs[run_id]
        if isinstance(result, str):
            stored.problem = result
        else:
            stored.document = result
    ids = list(runs)
    marks = _placeholders(connection, len(ids))
    for bid, run_id, name in connection.exec_driver_sql(
        f"SELECT id, run_id, test_name FROM benchmarks WHERE run_id IN ({marks}) ORDER BY id",
        tuple(ids),
    ).all():
        runs[run_id].benchmarks.append((bid, name))
        runs[run_id].metric_names[bid] = set()
    names: dict[int, set[str]] = {}
    for stored in runs.values():
        names.update(stored.metric_names)
    groups = for_connection(connection).metric_name_groups(connection, list(names), ids)
    for bid, group in groups:
        names[bid].update(group)
    for (run_id,) in connection.exec_driver_sql(
        f"SELECT DISTINCT run_id FROM hardware WHERE run_id IN ({marks})", tuple(ids)
    ).all():
        runs[run_id].has_hardware = True
    return list(runs.values())


def _derive_batch(connection: Connection, runs: list[_Stored]) -> DeriveReport:
    """Insert what a fresh save of each document would have and the run lacks."""
    dialect = connection.dialect
    flag = bind_processor(Benchmark.__table__.c.passed, dialect)
    stamp = bind_processor(Benchmark.__table__.c.timestamp, dialect)
    seam = for_connection(connection)
    nan = seam.stored_nan
    created = stamp(utcnow())
    metric_rows: list[tuple[Any, ...]] = []
    hardware: list[tuple[Any, ...]] = []
    new_benchmarks: list[tuple[Any, ...]] = []
    new_metrics: list[list[tuple[str, float]]] = []  # per new benchmark
    refused: list[str] = []

    def value(number: float) -> Any:
        return number if nan is None or number == number else nan

    for run in runs:
        doc = run.document
        if doc is None:
            refused.append(f"{run.id}: {run.problem}")
            continue
        rows_by_name: dict[str | None, deque[int]] = {}
        for bid, name in run.benchmarks:
            rows_by_name.setdefault(name, deque()).append(bid)
        for test_name, version, number, passed, timestamp, flat in doc.results:
            matches = rows_by_name.get(test_name)
            if matches:
                bid = matches.popleft()
                present = run.metric_names[bid]
                if nan is None:
                    metric_rows.extend((bid, n, v) for n, v in flat if n not in present)
                else:
                    metric_rows.extend(
                        (bid, n, v if v == v else nan) for n, v in flat if n not in present
                    )
                continue
            new_benchmarks.append(
                (
                    run.id,
                    test_name,
                    version,
                    number,
                    flag(passed),
                    stamp(parse_timestamp(timestamp)),
                    created,
                )
            )
            new_metrics.append(flat)
        if not run.has_hardware and doc.hardware is not None:
            hardware.append((run.id, *doc.hardware[1:]))  # the run keeps its own id

    ids = seam.insert_numbered(connection, "benchmarks", BENCHMARK_INSERT_COLUMNS, new_benchmarks)
    for bid, flat_values in zip(ids, new_metrics, strict=True):
        metric_rows.extend((bid, name, value(number)) for name, number in flat_values)
    seam.bulk_load(connection, "metrics", METRIC_INSERT_COLUMNS, metric_rows)
    seam.bulk_insert(connection, "hardware", HARDWARE_INSERT_COLUMNS, hardware, copy=True)
    return DeriveReport(
        runs=len(runs),
        benchmarks_added=len(new_benchmarks),
        metrics_added=len(metric_rows),
        hardware_added=len(hardware),
        refused=len(refused),
        refused_examples=refused[:EXAMPLES],
    )


def derive_rows(
    connection: Connection,
    *,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> DeriveReport:
    """Give every stored run the benchmark, metric and hardware rows a fresh save of its
    ``raw_json`` would produce, in the caller's transaction (see the module docstring).

    On SQLite the transaction must hold the write lock (:func:`rederive` begins
    IMMEDIATE). The fingerprints computed on the way are kept for
    :func:`fill_fingerprints` in the same transaction. Everything runs in this
    process, on this connection: nothing outlives the caller holding its
    connection or locks.
    """
    total = int(connection.exec_driver_sql("SELECT count(*) FROM runs").scalar_one())
    # Millions of metric rows go into tables and indexes far larger than
    # SQLite's default 2 MB page cache; a larger cache for this connection
    # keeps their index pages in memory (restored afterwards).
    with for_connection(connection).large_cache(connection, SQLITE_CACHE_KIB):
        return _derive_all(connection, total, progress, batch_size)


def _derive_all(
    connection: Connection,
    total: int,
    progress: Progress | None,
    batch_size: int,
) -> DeriveReport:
    report = DeriveReport()
    stash = _stash(connection)
    done = 0
    for rows in _batches(connection, batch_size):
        runs = _load(connection, rows, _parse([r[2] for r in rows]))
        report = report.merged(_derive_batch(connection, runs))
        for run in runs:
            if run.document is not None:
                stash[run.id] = (run.document.fingerprint, run.age())
        done += len(rows)
        if progress is not None:
            progress(done, total)
    if report.refused:
        logger.warning(
            "%d stored document(s) would be refused by a save; nothing derived for them, e.g. %s",
            report.refused,
            "; ".join(report.refused_examples),
        )
    return report


def derive_runs(connection: Connection, run_ids: Sequence[str]) -> DeriveReport:
    """Give the runs ``run_ids`` (one batch, oldest first) the rows a fresh save of each
    ``raw_json`` would produce, and each content they hold that has no entry in
    ``run_fingerprints`` its first run here, in the caller's transaction.

    ``upgrade``'s derivation step calls it a batch per transaction, in age order,
    so that each content goes to its oldest run across batches too; an owner
    already recorded keeps its content (``ON CONFLICT DO NOTHING``).
    """
    rows = _read(connection, run_ids)
    if not rows:
        return DeriveReport()
    with for_connection(connection).large_cache(connection, SQLITE_CACHE_KIB):
        runs = _load(connection, rows, _parse([r[2] for r in rows]))
        report = _derive_batch(connection, runs)
    owners: dict[str, str] = {}
    for run in runs:
        if run.document is not None:
            owners.setdefault(run.document.fingerprint, run.id)
    added = (
        for_connection(connection).insert_ignore(
            connection, "run_fingerprints", ("fingerprint", "run_id"), list(owners.items())
        )
        if owners
        else 0
    )
    return report.model_copy(update={"fingerprints_added": added})
