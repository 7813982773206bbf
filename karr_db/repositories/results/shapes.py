"""The read statements of :class:`ResultsRepository`, built once per shape of call.

A shape is which filters a call sets (not their values), its order, whether it
has a cursor or an offset: the statement of a shape is built and compiled once,
and every call binds its values. Building a Core statement per call (ORM column
comparisons, the hardware join, the page's subquery, then its cache key) cost
more than the query it sent on SQLite and a third of a latest-runs page; so did
validating DTOs, which are built here from the row tuples (the database typed
every value already).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
)

from karr_db.models import Benchmark, Metric, Run
from karr_db.repositories._common import row_builder
from karr_db.repositories.results.dto import (
    BenchmarkDetail,
    HardwareInfo,
    MetricPoint,
    RunDetail,
    RunSummary,
)
from karr_db.repositories.results.filters import (
    filter_shape,
    filters_hardware,
    run_conditions,
    with_hardware,
)
from karr_db.repositories.results.page import page_statement

#: Every read statement here: columns of any types.
Statement = Select[*tuple[Any, ...]]

__all__ = [
    "count_statement",
    "history_statement",
    "list_statement",
    "point",
    "summary",
]

summary = row_builder(RunSummary)
detail = row_builder(RunDetail, (*RunSummary.model_fields, "benchmarks", "hardware"))
benchmark = row_builder(BenchmarkDetail)
hardware = row_builder(HardwareInfo)
#: Where each order field sits in a summary row (its cursor value is read from there).
SUMMARY_INDEX = {name: index for index, name in enumerate(RunSummary.model_fields)}
point = row_builder(MetricPoint)


def count_statement(params: Iterable[str]) -> Statement:
    """``count(*)`` of the runs matching the filters among ``params``."""
    return _count_statement(filter_shape(params))


@cache
def _count_statement(shape: tuple[str, ...]) -> Statement:
    # count(*), not count(id): without a column the count is answered from an
    # index alone (idx_runs_passed, say).
    stmt = select(func.count()).select_from(Run)
    if filters_hardware(shape):
        stmt = with_hardware(stmt)
    return stmt.where(*run_conditions(shape))


def list_statement(
    params: Iterable[str],
    column: Any,
    descending: bool,
    cursor: str | None,
    offset: bool,
    *,
    lateral: bool,
) -> Statement:
    """A page of summaries: ``limit`` bound, ``offset`` when asked, and after a cursor
    (``cursor`` is ``"null"`` for a NULL order value, ``"value"`` otherwise) the
    bound ``c_value`` and ``c_id``."""
    return _list_statement(filter_shape(params), column.key, descending, cursor, offset, lateral)


@cache
def _list_statement(
    shape: tuple[str, ...],
    order_key: str,
    descending: bool,
    cursor: str | None,
    offset: bool,
    lateral: bool,
) -> Statement:
    column = getattr(Run, order_key)
    conditions = run_conditions(shape)
    if cursor is not None:
        run_id = bindparam("c_id", type_=Run.id.type)
        id_after = Run.id < run_id if descending else Run.id > run_id
        if cursor == "null":
            conditions.append(and_(column.is_(None), id_after))
        else:
            value = bindparam("c_value", type_=column.type)
            beyond = column < value if descending else column > value
            conditions.append(or_(column.is_(None), beyond, and_(column == value, id_after)))
    return page_statement(
        conditions,
        column,
        descending,
        bindparam("limit", type_=Integer()),
        bindparam("offset", type_=Integer()) if offset else None,
        hardware_filtered=filters_hardware(shape),
        lateral=lateral,
    )


def history_statement(params: Iterable[str], by_test: bool, cursor: str | None) -> Statement:
    """One page of a metric's history: ``metric``, ``limit`` and, when given, ``test_name``
    bound; after a cursor (``"null"`` for a NULL run time, ``"value"`` otherwise)
    ``c_time``, ``c_run``, ``c_benchmark`` and ``c_metric``. Columns: the
    :class:`MetricPoint` fields (model and engine last), then the benchmark and
    metric ids of the cursor."""
    return _history_statement(filter_shape(params), by_test, cursor)


@cache
def _history_statement(shape: tuple[str, ...], by_test: bool, cursor: str | None) -> Statement:
    conditions = [Metric.metric_name == bindparam("metric"), *run_conditions(shape)]
    if by_test:
        conditions.append(Benchmark.test_name == bindparam("test_name"))
    if cursor is not None:
        run_id = bindparam("c_run", type_=Run.id.type)
        benchmark_id = bindparam("c_benchmark", type_=Benchmark.id.type)
        later = or_(
            Run.id > run_id,
            and_(
                Run.id == run_id,
                or_(
                    Benchmark.id > benchmark_id,
                    and_(Benchmark.id == benchmark_id, Metric.id > bindparam("c_metric")),
                ),
            ),
        )
        if cursor == "null":
            conditions.append(and_(Run.timestamp.is_(None), later))
        else:
            time = bindparam("c_time", type_=Run.timestamp.type)
            conditions.append(
                or_(
                    Run.timestamp > time,
                    Run.timestamp.is_(None),
                    and_(Run.timestamp == time, later),
                )
            )
    stmt = (
        select(
            Run.id,
            Run.timestamp,
            Benchmark.test_name,
            Benchmark.run_number,
            Metric.metric_value,
            Run.model,
            Run.engine,
            Benchmark.id,
            Metric.id,
        )
        .select_from(Metric)
        .join(Benchmark, Benchmark.id == Metric.benchmark_id)
        .join(Run, Run.id == Benchmark.run_id)
    )
    if filters_hardware(shape):
        stmt = with_hardware(stmt)
    return (
        stmt.where(*conditions)
        .order_by(Run.timestamp.asc().nulls_last(), Run.id, Benchmark.id, Metric.id)
        .limit(bindparam("limit", type_=Integer()))
    )
