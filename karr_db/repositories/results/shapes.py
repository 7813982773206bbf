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

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
)

from karr_db.models import Benchmark, Hardware, Metric, Run
from karr_db.repositories._common import row_builder
from karr_db.repositories.results.dto import (
    BenchmarkDetail,
    HardwareInfo,
    MetricPoint,
    RunDetail,
    RunSummary,
)
from karr_db.repositories.results.page import page_statement

#: Every read statement here: columns of any types.
Statement = Select[*tuple[Any, ...]]

__all__ = [
    "count_statement",
    "filter_params",
    "history_statement",
    "list_statement",
    "point",
    "summary",
]

#: Equality filters of a :class:`RunFilter`, in the one order conditions are built.
_EQUAL: dict[str, Any] = {
    "model": Run.model,
    "engine": Run.engine,
    "suite_name": Run.suite_name,
    "passed": Run.passed,
    "kitt_version": Run.kitt_version,
    "gpu_model": Hardware.gpu_model,
    "environment_type": Hardware.environment_type,
}
_FILTERS = (*_EQUAL, "models", "since", "until")

summary = row_builder(RunSummary)
detail = row_builder(RunDetail, (*RunSummary.model_fields, "benchmarks", "hardware"))
benchmark = row_builder(BenchmarkDetail)
hardware = row_builder(HardwareInfo)
#: Where each order field sits in a summary row (its cursor value is read from there).
SUMMARY_INDEX = {name: index for index, name in enumerate(RunSummary.model_fields)}
point = row_builder(MetricPoint)


def filter_params(run_filter: Any) -> dict[str, Any]:
    """The set filters of a :class:`RunFilter` as bound values (``f_<name>``)."""
    values = ((name, getattr(run_filter, name)) for name in _FILTERS)
    return {
        f"f_{name}": list(value) if name == "models" else value
        for name, value in values
        if value is not None
    }


def _shape(params: Iterable[str]) -> tuple[str, ...]:
    chosen = set(params)
    return tuple(name for name in _FILTERS if f"f_{name}" in chosen)


def run_conditions(shape: Sequence[str]) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for name in shape:
        if name in _EQUAL:
            column = _EQUAL[name]
            conditions.append(column == bindparam(f"f_{name}", type_=column.type))
        elif name == "models":
            conditions.append(Run.model.in_(bindparam("f_models", expanding=True)))
        elif name == "since":
            conditions.append(Run.timestamp >= bindparam("f_since", type_=Run.timestamp.type))
        else:
            conditions.append(Run.timestamp < bindparam("f_until", type_=Run.timestamp.type))
    return conditions


def _hardware_filtered(shape: Sequence[str]) -> bool:
    return "gpu_model" in shape or "environment_type" in shape


def _with_first_hardware(stmt: Statement) -> Statement:
    first = (
        select(func.min(Hardware.id)).where(Hardware.run_id == Run.id).correlate(Run)
    ).scalar_subquery()
    return stmt.outerjoin(Hardware, and_(Hardware.run_id == Run.id, Hardware.id == first))


def count_statement(params: Iterable[str]) -> Statement:
    """``count(*)`` of the runs matching the filters among ``params``."""
    return _count_statement(_shape(params))


@cache
def _count_statement(shape: tuple[str, ...]) -> Statement:
    # count(*), not count(id): without a column the count is answered from an
    # index alone (idx_runs_passed, say).
    stmt = select(func.count()).select_from(Run)
    if _hardware_filtered(shape):
        stmt = _with_first_hardware(stmt)
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
    return _list_statement(_shape(params), column.key, descending, cursor, offset, lateral)


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
        hardware_filtered=_hardware_filtered(shape),
        lateral=lateral,
    )


def history_statement(params: Iterable[str], by_test: bool, cursor: str | None) -> Statement:
    """One page of a metric's history: ``metric``, ``limit`` and, when given, ``test_name``
    bound; after a cursor (``"null"`` for a NULL run time, ``"value"`` otherwise)
    ``c_time``, ``c_run``, ``c_benchmark`` and ``c_metric``. Columns: the
    :class:`MetricPoint` fields (model and engine last), then the benchmark and
    metric ids of the cursor."""
    return _history_statement(_shape(params), by_test, cursor)


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
    if _hardware_filtered(shape):
        stmt = _with_first_hardware(stmt)
    return (
        stmt.where(*conditions)
        .order_by(Run.timestamp.asc().nulls_last(), Run.id, Benchmark.id, Metric.id)
        .limit(bindparam("limit", type_=Integer()))
    )
