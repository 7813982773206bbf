"""The leaderboard read from the aggregate: one statement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    bindparam,
    case,
    func,
    lambda_stmt,
    literal_column,
    select,
    type_coerce,
)

from karr_db.models.types import Double
from karr_db.repositories._common import row_builder
from karr_db.repositories.leaderboard_aggregate.statements import (
    AGGREGATE_FILTERS,
    SUM_SCALE,
    TABLE,
    unknown_extremes,
)
from karr_db.repositories.results.dto import AggregateRow


def leaderboard(
    connection: Connection,
    metric: str,
    *,
    group_by: Sequence[str],
    per_test: bool,
    test_name: str | None,
    filters: Mapping[str, Any],
    order_by: str,
    descending: bool,
    limit: int | None,
) -> list[AggregateRow] | None:
    """count/avg/min/max of one metric per group from the aggregate (median ``None``);
    ``None`` when a group it would read has an unknown extreme (the caller then reads
    the rows).

    ``filters`` are equality filters on :data:`AGGREGATE_FILTERS` columns;
    arguments are validated by the caller (:meth:`ResultsRepository.leaderboard`).

    The statement's columns: the group keys, the test name when ``per_test``, then
    count, the scaled average, min, max, the non-finite count, and whether an
    unknown extreme could change the answer. It is a lambda statement holding SQL
    elements and named placeholders, no values (``metric``, ``f_<filter>``,
    ``test_name``, ``limit``), tracking the shape of the call: SQLAlchemy builds
    and compiles it once per shape.
    """
    names = [*group_by, "_test"] if per_test else list(group_by)
    keys = [_KEYS[name] for name in names]
    groups = [key.element for key in keys]
    equal = [TABLE.c[name] for name in sorted(filters)]
    unknown = _ANY_UNKNOWN if order_by in ("min", "max") else _UNKNOWN
    order = [_SORTS[order_by, descending], *(_TIES[name] for name in names)]
    stmt = lambda_stmt(
        lambda: (
            select(*keys, *_COLUMNS, unknown)
            .where(
                TABLE.c.metric_name == bindparam("metric"),
                *(c == bindparam(f"f_{c.key}") for c in equal),
            )
            .group_by(*groups)
            .order_by(*order)
        ),
        track_on=[" ".join(names), " ".join(sorted(filters)), order_by, descending],
        global_track_bound_values=False,
    )
    if test_name is not None:
        stmt += lambda s: s.where(TABLE.c.test_name == bindparam("test_name"))
    if limit is not None:
        stmt += lambda s: s.limit(bindparam("limit", type_=Integer()))
    params = {f"f_{name}": value for name, value in filters.items()}
    params.update(metric=metric, test_name=test_name, limit=limit)
    rows = connection.execute(stmt, params).all()
    if any(row[-1] for row in rows):
        return None
    width = len(group_by)
    return [
        _aggregate_row(
            (
                dict(zip(group_by, row[:width], strict=True)),
                row[width] if per_test else test_name,
                metric,
                int(row[-6]),
                int(row[-2]),
                None if row[-5] is None else row[-5] / SUM_SCALE,  # inf, never an error
                row[-4],
                row[-3],
                None,
            )
        )
        for row in rows
    ]


_aggregate_row = row_builder(AggregateRow)


_ZERO = literal_column("0", Integer())
_COUNT = func.sum(TABLE.c.value_count)
#: The aggregates a leaderboard reads, built once, their constants SQL text (a bound
#: constant in a lambda's SQL elements would be copied on every execution). The
#: average is still scaled by SUM_SCALE (same order); unscaled in Python, where an
#: average beyond the largest double becomes inf instead of an error.
_AGGREGATES: dict[str, Any] = {
    "count": _COUNT,
    "avg": type_coerce(
        case((_COUNT > _ZERO, func.sum(TABLE.c.value_sum) / _COUNT), else_=None), Double()
    ),
    "min": type_coerce(func.min(TABLE.c.value_min), Double()),
    "max": type_coerce(func.max(TABLE.c.value_max), Double()),
}
_COLUMNS = (
    *(expr.label(name) for name, expr in _AGGREGATES.items()),
    func.sum(TABLE.c.non_finite).label("non_finite"),
)
#: Whether a row's groups include an unknown extreme; ordered by an extreme, whether
#: any selected group does (a window, so that a LIMIT cannot hide it).
_ONE_IF_UNKNOWN = func.max(case((unknown_extremes(), literal_column("1", Integer())), else_=_ZERO))
_UNKNOWN = _ONE_IF_UNKNOWN.label("unknown")
_ANY_UNKNOWN = func.max(_ONE_IF_UNKNOWN).over().label("unknown")


#: Each group column labelled, and its tie-breaking order; ``_test`` is the test name.
_KEYS = {
    **{name: TABLE.c[name].label(f"g_{name}") for name in AGGREGATE_FILTERS},
    "_test": TABLE.c.test_name.label("g__test"),
}
_TIES = {name: key.element.asc().nulls_last() for name, key in _KEYS.items()}
#: The sort of each order (an aggregate or a group column) and direction.
_SORTS = {
    (name, descending): (expr.desc() if descending else expr.asc()).nulls_last()
    for name, expr in {**_AGGREGATES, **{n: TABLE.c[n] for n in AGGREGATE_FILTERS}}.items()
    for descending in (True, False)
}
