"""The leaderboard read from the aggregate: one statement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    case,
    func,
    select,
    type_coerce,
)

from karr_db.models.types import Double
from karr_db.repositories._common import row_builder
from karr_db.repositories.leaderboard_aggregate.statements import (
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
    """
    stmt = _leaderboard_statement(
        metric, group_by, per_test, test_name, filters, order_by, descending, limit
    )
    rows = connection.execute(stmt).all()
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


def _leaderboard_statement(
    metric: str,
    group_by: Sequence[str],
    per_test: bool,
    test_name: str | None,
    filters: Mapping[str, Any],
    order_by: str,
    descending: bool,
    limit: int | None,
) -> Select[Any]:
    """The aggregate's leaderboard statement. Columns: the group keys, the test
    name when ``per_test``, then count, the scaled average, min, max, the
    non-finite count, and whether an unknown extreme could change the answer.
    """
    keys = [TABLE.c[g].label(f"g_{g}") for g in group_by]
    if per_test:
        keys.append(TABLE.c.test_name.label("g__test"))
    conditions = [TABLE.c.metric_name == metric]
    conditions += [TABLE.c[name] == filters[name] for name in sorted(filters)]
    if test_name is not None:
        conditions.append(TABLE.c.test_name == test_name)
    count = func.sum(TABLE.c.value_count)
    aggregates: dict[str, Any] = {
        "count": count,
        # Still scaled by SUM_SCALE (same order); unscaled in Python, where an
        # average beyond the largest double becomes inf instead of an error.
        "avg": type_coerce(
            case((count > 0, func.sum(TABLE.c.value_sum) / count), else_=None), Double()
        ),
        "min": type_coerce(func.min(TABLE.c.value_min), Double()),
        "max": type_coerce(func.max(TABLE.c.value_max), Double()),
    }
    group_columns = [k.element for k in keys]
    # Whether a row's groups include an unknown extreme; ordered by an extreme,
    # whether any selected group does (a window, so that a LIMIT cannot hide one).
    unknown: Any = func.max(case((unknown_extremes(), 1), else_=0))
    if order_by in ("min", "max"):
        unknown = func.max(unknown).over()
    sort_key = aggregates[order_by] if order_by in aggregates else TABLE.c[order_by]
    stmt = (
        select(
            *keys,
            *(expr.label(name) for name, expr in aggregates.items()),
            func.sum(TABLE.c.non_finite).label("non_finite"),
            unknown.label("unknown"),
        )
        .where(*conditions)
        .group_by(*group_columns)
        .order_by(
            (sort_key.desc() if descending else sort_key.asc()).nulls_last(),
            *(c.asc().nulls_last() for c in group_columns),
        )
    )
    return stmt if limit is None else stmt.limit(limit)
