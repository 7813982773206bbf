"""The aggregate's table, its scaled sums and the statements its upkeep runs,
shared by the upkeep and the reads (each built once, per dialect where it differs)."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from functools import cache, reduce
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
    update,
)

from karr_db.dialects import for_dialect, group_digest
from karr_db.models import Benchmark, Hardware, LeaderboardAggregate, Metric, Run
from karr_db.models.leaderboard import AGGREGATE_KEY_COLUMNS
from karr_db.models.types import Double

#: ``value_sum`` holds the sum of the values times 2**-64: exact (a power of two),
#: and no sum of doubles so scaled can overflow (PostgreSQL would refuse the save
#: with "value out of range" where two values near the largest double meet).
SUM_SCALE = 2.0**-64
#: Values smaller in magnitude count as 0 in ``value_sum`` (see :func:`scaled`).
NEGLIGIBLE = 2.0**-960

TABLE: Table = LeaderboardAggregate.__table__  # type: ignore[assignment]

#: Run filters the aggregate can apply (equality on a group column); any other
#: filter (``since``, ``until``, ``passed``) needs the rows.
AGGREGATE_FILTERS = frozenset(AGGREGATE_KEY_COLUMNS) - {"test_name"}

#: The rows' group columns, in :data:`AGGREGATE_KEY_COLUMNS` order.
ROW_KEYS: tuple[Any, ...] = (
    Benchmark.test_name,
    Run.model,
    Run.engine,
    Run.suite_name,
    Run.kitt_version,
    Hardware.gpu_model,
    Hardware.environment_type,
)


def is_finite(value: Any) -> ColumnElement[bool]:
    return and_(value < literal(math.inf, Double()), value > literal(-math.inf, Double()))


def scaled(finite: Any) -> Any:
    """A finite value times :data:`SUM_SCALE`; below :data:`NEGLIGIBLE` in magnitude, 0
    (PostgreSQL raises on a product that underflows to 0; such values add nothing
    an average of doubles could show)."""
    return case(
        (func.abs(finite) < literal(NEGLIGIBLE, Double()), 0.0),
        else_=finite * literal(SUM_SCALE, Double()),
    )


def group_key(columns: Sequence[Any]) -> ColumnElement[str]:
    """Each column as ``<length>:<text>`` or ``~`` for NULL, concatenated: one text per group,
    distinct for distinct groups (NULL included), the same on both dialects."""
    parts = [
        type_coerce(
            case((c.is_(None), literal("~")), else_=cast(func.length(c), Run.model.type) + ":" + c),
            Run.model.type,
        )
        for c in columns
    ]
    return group_digest(reduce(operator.add, parts))


def contributions(where: ColumnElement[bool]) -> Select[Any]:
    """Per metric and group, what the metric rows matching ``where`` add to the aggregate."""
    value = Metric.metric_value
    finite = type_coerce(case((is_finite(value), value), else_=None), Double())
    first_hardware = (
        select(func.min(Hardware.id))
        .where(Hardware.run_id == Run.id)
        .correlate(Run)
        .scalar_subquery()
    )
    return (
        select(
            Metric.metric_name,
            group_key(ROW_KEYS).label("group_key"),
            *(k.label(name) for k, name in zip(ROW_KEYS, AGGREGATE_KEY_COLUMNS, strict=True)),
            func.count().label("row_count"),
            func.count(finite).label("value_count"),
            type_coerce(func.coalesce(func.sum(scaled(finite)), 0.0), Double()).label("value_sum"),
            type_coerce(func.min(finite), Double()).label("value_min"),
            type_coerce(func.max(finite), Double()).label("value_max"),
            (func.count(value) - func.count(finite)).label("non_finite"),
        )
        .select_from(Metric)
        .join(Benchmark, Benchmark.id == Metric.benchmark_id)
        .join(Run, Run.id == Benchmark.run_id)
        .outerjoin(Hardware, and_(Hardware.run_id == Run.id, Hardware.id == first_hardware))
        .where(Metric.metric_name.is_not(None), where)
        .group_by(Metric.metric_name, *ROW_KEYS)
    )


COLUMNS = (
    "metric_name",
    "group_key",
    *AGGREGATE_KEY_COLUMNS,
    "row_count",
    "value_count",
    "value_sum",
    "value_min",
    "value_max",
    "non_finite",
)
OF_RUNS = Benchmark.run_id.in_(bindparam("run_ids", expanding=True))


def unknown_extremes() -> ColumnElement[bool]:
    """Whether a stored group's minimum or maximum is unknown: it has finite values but
    a delete took away an extreme (see the package docstring)."""
    c = TABLE.c
    has_values = c.value_count > literal_column("0", Integer())
    return and_(has_values, or_(c.value_min.is_(None), c.value_max.is_(None)))


#: The contributions of the runs ``run_ids`` (what a removal subtracts).
GONE = contributions(OF_RUNS)


@cache
def add_statement(dialect: str) -> Any:
    """INSERT .. SELECT .. ON CONFLICT DO UPDATE: the runs' contributions, one statement,
    built once per dialect (in key order, so row locks are always taken in one order)."""
    source = contributions(OF_RUNS).order_by(Metric.metric_name, "group_key")
    seam = for_dialect(dialect)
    stmt = seam.upsert(TABLE).from_select(list(COLUMNS), source)
    new = stmt.excluded
    # least/greatest skip NULLs on PostgreSQL; SQLite's min/max of several
    # arguments return NULL if any is, hence the coalesces.
    least, greatest = seam.extremes()

    def extreme(pick: Any, old: Any, added: Any) -> Any:
        # An unknown extreme stays unknown: the group's rows would be needed to know it.
        known = pick(func.coalesce(old, added), func.coalesce(added, old))
        return type_coerce(
            case((and_(TABLE.c.value_count > 0, old.is_(None)), None), else_=known), Double()
        )

    return stmt.on_conflict_do_update(
        index_elements=[TABLE.c.metric_name, TABLE.c.group_key],
        set_={
            "row_count": TABLE.c.row_count + new.row_count,
            "value_count": TABLE.c.value_count + new.value_count,
            "value_sum": TABLE.c.value_sum + new.value_sum,
            "value_min": extreme(least, TABLE.c.value_min, new.value_min),
            "value_max": extreme(greatest, TABLE.c.value_max, new.value_max),
            "non_finite": TABLE.c.non_finite + new.non_finite,
        },
    )


def _without(extreme: Any, removed: Any, lost: Any) -> Any:
    """A stored extreme once values go: NULL when no finite value is left or when the
    removed ones reached it (``lost``: it is then unknown, and reads go to the rows)."""
    gone_all = TABLE.c.value_count == bindparam("count")
    return case((gone_all, None), (lost(extreme, removed), None), else_=extreme)


#: Subtracts a removed contribution (``rows``, ``count``, ``sum``, ``nf``, and its
#: extremes ``lo``/``hi``) from one group: counts and sums exactly, extremes the
#: removal reached become unknown. The SET expressions read the row as it was.
SUBTRACT = (
    update(TABLE)
    .where(TABLE.c.metric_name == bindparam("m"), TABLE.c.group_key == bindparam("k"))
    .values(
        row_count=TABLE.c.row_count - bindparam("rows"),
        value_count=TABLE.c.value_count - bindparam("count"),
        value_sum=case(
            (TABLE.c.value_count == bindparam("count"), 0.0),
            else_=TABLE.c.value_sum - bindparam("sum", type_=Double()),
        ),
        value_min=_without(TABLE.c.value_min, bindparam("lo", type_=Double()), operator.ge),
        value_max=_without(TABLE.c.value_max, bindparam("hi", type_=Double()), operator.le),
        non_finite=TABLE.c.non_finite - bindparam("nf"),
    )
)
DROP_EMPTY = delete(TABLE).where(
    TABLE.c.metric_name == bindparam("m"),
    TABLE.c.group_key == bindparam("k"),
    TABLE.c.row_count <= 0,
)
