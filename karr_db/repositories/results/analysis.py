"""Analyses over stored runs: stats, the leaderboard, metric history and
comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    StatementLambdaElement,
    and_,
    bindparam,
    case,
    func,
    lambda_stmt,
    literal,
    or_,
    select,
    type_coerce,
)

from karr_db.dialects import for_connection
from karr_db.engine import translated
from karr_db.errors import InvalidQueryError, NotFoundError
from karr_db.models import Benchmark, Hardware, Metric, Run
from karr_db.models.types import Double
from karr_db.repositories import leaderboard_aggregate
from karr_db.repositories._common import Page, check_limit, page_rows
from karr_db.repositories.leaderboard_aggregate.statements import NEGLIGIBLE
from karr_db.repositories.results import shapes
from karr_db.repositories.results.base import ResultsBase
from karr_db.repositories.results.dto import (
    AggregateRow,
    Comparison,
    ComparisonRow,
    GroupCounts,
    MetricPoint,
    OutcomeCounts,
    RunStats,
)
from karr_db.repositories.results.filters import (
    GROUP_FIELDS,
    LEADERBOARD_ORDER_FIELDS,
    RunFilter,
    decode_point,
    encode_point,
    filtered,
    filters_hardware,
    parse_filter,
    run_conditions,
    with_hardware,
)


class ResultsAnalysis(ResultsBase):
    """The analyses of :class:`~karr_db.repositories.results.ResultsRepository`."""

    def stats(self, filters: RunFilter | Mapping[str, Any] | None = None) -> RunStats:
        """Totals by outcome, overall and by engine, model and suite, from one grouped
        statement (a row per engine, model, suite and outcome, folded here)."""
        f = parse_filter(filters)
        keys = (Run.engine, Run.model, Run.suite_name, Run.passed)
        conditions, params = run_conditions(f)
        stmt = (
            with_hardware(select(*keys, func.count()).select_from(Run), filters_hardware(f))
            .where(*conditions)
            .group_by(*keys)
        )
        with translated("counting runs"):
            rows = self.connection.execute(stmt, params).all()
        totals: dict[str, int] = dict.fromkeys(("runs", "passed", "failed", "unknown"), 0)
        groups: dict[str, dict[str | None, dict[str, int]]] = {
            "engine": {},
            "model": {},
            "suite": {},
        }
        for engine, model, suite, passed, count in rows:
            outcome = "unknown" if passed is None else "passed" if passed else "failed"
            for counts in (
                totals,
                groups["engine"].setdefault(engine, dict.fromkeys(totals, 0)),
                groups["model"].setdefault(model, dict.fromkeys(totals, 0)),
                groups["suite"].setdefault(suite, dict.fromkeys(totals, 0)),
            ):
                counts["runs"] += count
                counts[outcome] += count

        def listed(key: str) -> list[GroupCounts]:
            ordered = sorted(groups[key].items(), key=lambda item: (item[0] is None, item[0] or ""))
            return [GroupCounts(name=name, **counts) for name, counts in ordered]

        return RunStats(
            totals=OutcomeCounts(**totals),
            by_engine=listed("engine"),
            by_model=listed("model"),
            by_suite=listed("suite"),
        )

    def leaderboard(
        self,
        metric: str,
        *,
        group_by: Sequence[str] = ("model",),
        per_test: bool = False,
        test_name: str | None = None,
        filters: RunFilter | Mapping[str, Any] | None = None,
        order_by: str = "avg",
        descending: bool = True,
        limit: int | None = None,
        median: bool = True,
    ) -> list[AggregateRow]:
        """count/avg/min/max/median of one metric per group (one statement).

        Non-finite values are left out of the aggregates and counted in
        ``non_finite`` (see the module docstring). ``per_test`` adds the
        benchmark's test name to the grouping; ``test_name`` restricts to one.

        ``median=False`` leaves the median out (``None``): then, unless a
        filter needs the rows (``since``, ``until``, ``passed``) or a delete
        left a selected group's minimum or maximum unknown, the answer comes
        from the leaderboard aggregate (beyond the reference, see
        :mod:`karr_db.repositories.leaderboard_aggregate`), whose cost does not
        grow with the history. The rows answer everything the aggregate cannot
        (medians, time windows, outcomes); both give the same count, min and max.
        """
        f = parse_filter(filters)
        if isinstance(group_by, str):
            group_by = (group_by,)
        unknown = [g for g in group_by if g not in GROUP_FIELDS]
        if unknown or not group_by:
            raise InvalidQueryError(
                f"unknown group field(s) {unknown!r}; group by one or more of "
                f"{', '.join(GROUP_FIELDS)}"
            )
        if len(set(group_by)) != len(group_by):
            raise InvalidQueryError(f"group fields repeat: {list(group_by)!r}")
        if order_by not in (*LEADERBOARD_ORDER_FIELDS, *group_by):
            raise InvalidQueryError(
                f"unknown leaderboard order {order_by!r}; use one of "
                f"{', '.join((*LEADERBOARD_ORDER_FIELDS, *group_by))}"
            )
        if limit is not None:
            check_limit(limit)
        if not median:
            if order_by == "median":
                raise InvalidQueryError("order by median needs median=True")
            chosen = f.model_dump(exclude_none=True)
            if set(chosen) <= leaderboard_aggregate.AGGREGATE_FILTERS:
                with translated("computing a leaderboard"):
                    board = leaderboard_aggregate.leaderboard(
                        self.connection,
                        metric,
                        group_by=group_by,
                        per_test=per_test,
                        test_name=test_name,
                        filters=chosen,
                        order_by=order_by,
                        descending=descending,
                        limit=limit,
                    )
                if board is not None:
                    return board

        value = Metric.metric_value
        finite = and_(value < literal(math.inf, Double()), value > literal(-math.inf, Double()))
        finite_value = type_coerce(case((finite, value), else_=None), Double())
        keys: list[Any] = [GROUP_FIELDS[g].label(f"g_{g}") for g in group_by]
        if per_test:
            keys.append(Benchmark.test_name.label("g__test"))
        partition = [k.element for k in keys]
        conditions, params = run_conditions(f)
        conds = [Metric.metric_name == metric, *conditions]
        if test_name is not None:
            conds.append(Benchmark.test_name == test_name)
        # PostgreSQL has percentile_cont; SQLite needs row numbers (see the dialects).
        seam = for_connection(self.connection)
        ranks = seam.median_ranks(partition, finite, finite_value)
        inner = (
            with_hardware(
                metric_rows(*keys, finite_value.label("v"), value.label("raw"), *ranks),
                filters_hardware(f)
                or any(GROUP_FIELDS[g].table is Hardware.__table__ for g in group_by),
            )
            .where(*conds)
            .subquery()
        )
        v = type_coerce(inner.c.v, Double())
        median_of = seam.median(inner, v)
        group_columns = [inner.c[k.name] for k in keys]
        aggregates: dict[str, Any] = {
            "count": func.count(inner.c.v),
            # Values below NEGLIGIBLE in magnitude count as 0 in averages, as in the
            # maintained aggregate, whose scaled sum cannot hold them: both paths
            # then rank groups alike (min, max and the median keep them exactly).
            "avg": type_coerce(
                func.avg(case((func.abs(v) < literal(NEGLIGIBLE, Double()), 0.0), else_=v)),
                Double(),
            ),
            "min": type_coerce(func.min(v), Double()),
            "max": type_coerce(func.max(v), Double()),
            "median": type_coerce(median_of, Double()),
        }
        sort_key = aggregates[order_by] if order_by in aggregates else inner.c[f"g_{order_by}"]
        stmt = (
            select(
                *group_columns,
                *(expr.label(name) for name, expr in aggregates.items()),
                (func.count(inner.c.raw) - func.count(inner.c.v)).label("non_finite"),
            )
            .group_by(*group_columns)
            .order_by(
                (sort_key.desc() if descending else sort_key.asc()).nulls_last(),
                *(c.asc().nulls_last() for c in group_columns),
            )
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        with translated("computing a leaderboard"):
            rows = self.connection.execute(stmt, params).all()
        return [
            AggregateRow(
                group={g: row._mapping[f"g_{g}"] for g in group_by},
                test_name=row._mapping["g__test"] if per_test else test_name,
                metric=metric,
                count=row.count,
                non_finite=row.non_finite,
                avg=row.avg,
                min=row.min,
                max=row.max,
                median=row.median if median else None,
            )
            for row in rows
        ]

    def metric_history(
        self,
        metric: str,
        *,
        model: str | None = None,
        engine: str | None = None,
        test_name: str | None = None,
        filters: RunFilter | Mapping[str, Any] | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[MetricPoint]:
        """One metric over time, oldest run first, one page at a time (one statement).

        Page on with ``cursor=page.next_cursor`` (keyset on the run's time, run,
        benchmark and metric row), so a history of any length is read in pages
        of at most :data:`~karr_db.limits.PAGE_LIMIT` points instead of all at once.
        A page's cost is its length (a few index probes a point): the default
        page is one a dashboard reads within its latency budget; a reader of the
        whole history (the CLI's chart) asks for the largest page.
        """
        # model and engine (checked on entry) take the place of the filters' own.
        given = {"model": model, "engine": engine}
        f = parse_filter(filters).model_copy(
            update={key: value for key, value in given.items() if value is not None}
        )
        check_limit(limit)
        after = None if cursor is None else decode_point(cursor)
        stmt, params = history_statement(f, metric, test_name, after, limit + 1)
        with translated("reading a metric history"):
            result = self.connection.execute(stmt, params)
            # Columns come typed from the database: no per-row validation needed.
            rows, items = page_rows(result, limit, lambda row: shapes.point(row[:7]))
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_point(last[1], last[0], last[7], last[8])
        return Page[MetricPoint](items=items, next_cursor=next_cursor)

    def compare(self, run_ids: Sequence[str]) -> Comparison:
        """Metric values of two or more runs side by side, the first as baseline (one statement).

        Benchmarks are matched by (test name, run number); a run that lacks a
        metric shows ``None`` there.
        """
        ids = list(dict.fromkeys(run_ids))
        if len(ids) < 2:
            raise InvalidQueryError("compare needs at least two different run ids")
        stmt = (
            select(
                Run.id,
                Benchmark.test_name,
                Benchmark.run_number,
                Metric.metric_name,
                Metric.metric_value,
            )
            .select_from(Run)
            .outerjoin(Benchmark, Benchmark.run_id == Run.id)
            .outerjoin(Metric, Metric.benchmark_id == Benchmark.id)
            .where(Run.id.in_(ids))
            .order_by(Benchmark.id, Metric.id)
        )
        with translated("comparing runs"):
            rows = self.connection.execute(stmt).all()
        found = {row[0] for row in rows}
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFoundError("run", missing[0] if len(missing) == 1 else missing)
        position = {run_id: i for i, run_id in enumerate(ids)}
        table: dict[tuple[str | None, int | None, str], list[float | None]] = {}
        order: list[tuple[str | None, int | None, str]] = []
        for run_id, test, number, name, value in rows:
            if name is None:
                continue
            key = (test, number, name)
            if key not in table:
                table[key] = [None] * len(ids)
                order.append(key)
            table[key][position[run_id]] = value
        # Rows come in benchmark-id order of whichever run was stored first;
        # sorting by key gives the same table whatever the storage order.
        order.sort(key=lambda k: (k[0] or "", k[1] if k[1] is not None else -1, k[2]))
        result_rows = []
        for key in order:
            values = table[key]
            base = values[0]
            differences = [None if base is None or x is None else x - base for x in values]
            result_rows.append(
                ComparisonRow(
                    test_name=key[0],
                    run_number=key[1],
                    metric=key[2],
                    values=values,
                    differences=differences,
                )
            )
        return Comparison(run_ids=ids, rows=result_rows)


def metric_rows(*columns: Any) -> Select[Any]:
    """``columns`` of each metric value joined to its benchmark and run: what
    histories, leaderboards and the tidy export read."""
    return (
        select(*columns)
        .select_from(Metric)
        .join(Benchmark, Benchmark.id == Metric.benchmark_id)
        .join(Run, Run.id == Benchmark.run_id)
    )


_runs, _benchmarks, _metrics = Run.__table__.c, Benchmark.__table__.c, Metric.__table__.c
#: A page of a metric's history (``metric``, ``limit``), oldest first. Columns: the
#: :class:`MetricPoint` fields (model and engine last), then the benchmark and
#: metric ids of the cursor.
_HISTORY = (
    metric_rows(
        _runs.id,
        _runs.timestamp,
        _benchmarks.test_name,
        _benchmarks.run_number,
        _metrics.metric_value,
        _runs.model,
        _runs.engine,
        _benchmarks.id,
        _metrics.id,
    )
    .where(Metric.metric_name == bindparam("metric"))
    .order_by(Run.timestamp.asc().nulls_last(), Run.id, Benchmark.id, Metric.id)
    .limit(bindparam("limit", type_=Integer()))
)


def history_statement(
    f: RunFilter,
    metric: str,
    test_name: str | None,
    after: tuple[datetime | None, str, int, int] | None,
    limit: int,
) -> tuple[StatementLambdaElement, dict[str, Any]]:
    """One page of a metric's history (:data:`_HISTORY`'s columns), after the point
    ``after`` (a decoded cursor: run time, run id, benchmark id, metric id) when
    given, and its parameters (see :func:`filtered`)."""
    params: dict[str, Any] = {"metric": metric, "limit": limit}
    stmt = filtered(lambda_stmt(lambda: _HISTORY, global_track_bound_values=False), f, params)
    if test_name is not None:
        stmt += lambda s: s.where(Benchmark.test_name == bindparam("test_name"))
        params["test_name"] = test_name
    if after is not None:
        params["c_time"], params["c_run"], params["c_benchmark"], params["c_metric"] = after
        if after[0] is None:
            stmt += lambda s: s.where(Run.timestamp.is_(None), _later())
        else:
            stmt += lambda s: s.where(
                or_(
                    Run.timestamp > bindparam("c_time", type_=Run.timestamp.type),
                    Run.timestamp.is_(None),
                    and_(Run.timestamp == bindparam("c_time", type_=Run.timestamp.type), _later()),
                )
            )
    return stmt, params


def _later() -> ColumnElement[bool]:
    """Rows after the cursor's run, benchmark and metric at the same run time."""
    run_id = bindparam("c_run", type_=Run.id.type)
    benchmark_id = bindparam("c_benchmark", type_=Benchmark.id.type)
    return or_(
        Run.id > run_id,
        and_(
            Run.id == run_id,
            or_(
                Benchmark.id > benchmark_id,
                and_(Benchmark.id == benchmark_id, Metric.id > bindparam("c_metric")),
            ),
        ),
    )
