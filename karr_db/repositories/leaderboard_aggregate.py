"""The leaderboard aggregate (``leaderboard_aggregates``, beyond the reference): upkeep and reads.

Every metric row counts once in the aggregate row of its metric and group (the
finest grouping a leaderboard offers: test name, model, engine, suite, KITT
version and the run's hardware headline), under the same NaN semantics as the
row-level leaderboard: finite values go into count, sum, min and max;
NaN and the infinities only into ``non_finite``; every row, NULL ones too, into
``row_count`` (a group is dropped when it has no rows left).

Upkeep, in the caller's transaction (all or nothing with the change itself):

* :func:`add_runs` after a run's rows were inserted (every save does it),
* :func:`remove_runs` before a run's rows go (every delete does it),
* :func:`maintained` around any other change to runs' rows (re-derived
  metrics, a changed hardware row): it removes their contribution first and
  adds it back after,
* :func:`rebuild` recomputes everything from the rows (adoption, repairs).

Count, sum and non-finite count follow additions and removals exactly; a
removal that takes away a group's minimum or maximum recomputes that group's
extremes from its remaining rows (a delete then costs a read of the group).
Sums are floating point: after many removals an average can differ from the
row-level one in its last digits; :func:`rebuild` resets them.

Concurrency: on PostgreSQL every upkeep first takes the event log's lock
(:meth:`EventsRepository.lock_log`, which every save and delete takes anyway),
so aggregate rows are changed by one writer at a time, in the order the locks
were granted: no lost update, no deadlock, and the extremes recomputed by a
removal cannot miss a concurrent save's values. SQLite has one writer anyway.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache, reduce
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
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
    select,
    true,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session

from karr_db.dialects import for_connection, for_dialect, group_digest
from karr_db.models import Benchmark, Hardware, LeaderboardAggregate, Metric, Run
from karr_db.models.leaderboard import AGGREGATE_KEY_COLUMNS
from karr_db.models.types import Double
from karr_db.repositories._common import row_builder
from karr_db.repositories.events import EventsRepository
from karr_db.repositories.results.dto import AggregateRow

__all__ = [
    "AGGREGATE_FILTERS",
    "add_runs",
    "leaderboard",
    "maintained",
    "rebuild",
    "remove_runs",
]

#: ``value_sum`` holds the sum of the values times 2**-64: exact (a power of two),
#: and no sum of doubles so scaled can overflow (PostgreSQL would refuse the save
#: with "value out of range" where two values near the largest double meet).
SUM_SCALE = 2.0**-64
#: Values smaller in magnitude count as 0 in ``value_sum`` (see :func:`_scaled`).
NEGLIGIBLE = 2.0**-960

_T: Table = LeaderboardAggregate.__table__  # type: ignore[assignment]

#: Run filters the aggregate can apply (equality on a group column); any other
#: filter (``since``, ``until``, ``passed``) needs the rows.
AGGREGATE_FILTERS = frozenset(AGGREGATE_KEY_COLUMNS) - {"test_name"}

#: The rows' group columns, in :data:`AGGREGATE_KEY_COLUMNS` order.
_ROW_KEYS: tuple[Any, ...] = (
    Benchmark.test_name,
    Run.model,
    Run.engine,
    Run.suite_name,
    Run.kitt_version,
    Hardware.gpu_model,
    Hardware.environment_type,
)


def _finite(value: Any) -> ColumnElement[bool]:
    return and_(value < literal(math.inf, Double()), value > literal(-math.inf, Double()))


def _scaled(finite: Any) -> Any:
    """A finite value times :data:`SUM_SCALE`; below :data:`NEGLIGIBLE` in magnitude, 0
    (PostgreSQL raises on a product that underflows to 0; such values add nothing
    an average of doubles could show)."""
    return case(
        (func.abs(finite) < literal(NEGLIGIBLE, Double()), 0.0),
        else_=finite * literal(SUM_SCALE, Double()),
    )


def _group_key(columns: Sequence[Any]) -> ColumnElement[str]:
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


def _contributions(where: ColumnElement[bool]) -> Select[Any]:
    """Per metric and group, what the metric rows matching ``where`` add to the aggregate."""
    value = Metric.metric_value
    finite = type_coerce(case((_finite(value), value), else_=None), Double())
    first_hardware = (
        select(func.min(Hardware.id))
        .where(Hardware.run_id == Run.id)
        .correlate(Run)
        .scalar_subquery()
    )
    return (
        select(
            Metric.metric_name,
            _group_key(_ROW_KEYS).label("group_key"),
            *(k.label(name) for k, name in zip(_ROW_KEYS, AGGREGATE_KEY_COLUMNS, strict=True)),
            func.count().label("row_count"),
            func.count(finite).label("value_count"),
            type_coerce(func.coalesce(func.sum(_scaled(finite)), 0.0), Double()).label("value_sum"),
            type_coerce(func.min(finite), Double()).label("value_min"),
            type_coerce(func.max(finite), Double()).label("value_max"),
            (func.count(value) - func.count(finite)).label("non_finite"),
        )
        .select_from(Metric)
        .join(Benchmark, Benchmark.id == Metric.benchmark_id)
        .join(Run, Run.id == Benchmark.run_id)
        .outerjoin(Hardware, and_(Hardware.run_id == Run.id, Hardware.id == first_hardware))
        .where(Metric.metric_name.is_not(None), where)
        .group_by(Metric.metric_name, *_ROW_KEYS)
    )


_COLUMNS = (
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
_OF_RUNS = Benchmark.run_id.in_(bindparam("run_ids", expanding=True))


@cache
def _add_statement(dialect: str) -> Any:
    """INSERT .. SELECT .. ON CONFLICT DO UPDATE: the runs' contributions, one statement,
    built once per dialect (in key order, so row locks are always taken in one order)."""
    source = _contributions(_OF_RUNS).order_by(Metric.metric_name, "group_key")
    seam = for_dialect(dialect)
    stmt = seam.upsert(_T).from_select(list(_COLUMNS), source)
    new = stmt.excluded
    # least/greatest skip NULLs on PostgreSQL; SQLite's min/max of several
    # arguments return NULL if any is, hence the coalesces.
    least, greatest = seam.extremes()

    def extreme(pick: Any, old: Any, added: Any) -> Any:
        return type_coerce(pick(func.coalesce(old, added), func.coalesce(added, old)), Double())

    return stmt.on_conflict_do_update(
        index_elements=[_T.c.metric_name, _T.c.group_key],
        set_={
            "row_count": _T.c.row_count + new.row_count,
            "value_count": _T.c.value_count + new.value_count,
            "value_sum": _T.c.value_sum + new.value_sum,
            "value_min": extreme(least, _T.c.value_min, new.value_min),
            "value_max": extreme(greatest, _T.c.value_max, new.value_max),
            "non_finite": _T.c.non_finite + new.non_finite,
        },
    )


def _lock(session: Session) -> Connection:
    EventsRepository(session).lock_log()
    return session.connection()


def add_runs(session: Session, run_ids: Sequence[str], *, log_locked: bool = False) -> None:
    """Add the stored rows of ``run_ids`` to the aggregate (after inserting them); one statement.

    ``log_locked``: the caller holds the event log's lock already (it appended
    an event in this transaction), which spares a round trip.
    """
    if not run_ids:
        return
    connection = session.connection()
    if not (log_locked or for_connection(connection).inserts_hold_log_lock):
        connection = _lock(session)
    connection.execute(_add_statement(connection.dialect.name), {"run_ids": list(run_ids)})


_SUBTRACT = (
    update(_T)
    .where(_T.c.metric_name == bindparam("m"), _T.c.group_key == bindparam("k"))
    .values(
        row_count=_T.c.row_count - bindparam("rows"),
        value_count=_T.c.value_count - bindparam("count"),
        value_sum=case(
            (_T.c.value_count == bindparam("count"), 0.0),
            else_=_T.c.value_sum - bindparam("sum", type_=Double()),
        ),
        non_finite=_T.c.non_finite - bindparam("nf"),
    )
)
_DROP_EMPTY = delete(_T).where(
    _T.c.metric_name == bindparam("m"), _T.c.group_key == bindparam("k"), _T.c.row_count <= 0
)
_SET_EXTREMES = (
    update(_T)
    .where(_T.c.metric_name == bindparam("m"), _T.c.group_key == bindparam("k"))
    .values(
        value_min=bindparam("lo", type_=Double()),
        value_max=bindparam("hi", type_=Double()),
    )
)


def remove_runs(session: Session, run_ids: Sequence[str]) -> None:
    """Take the rows of ``run_ids`` out of the aggregate; call it while they still exist.

    Groups left without rows are deleted; a group that loses its minimum or
    maximum gets them recomputed from its remaining rows.
    """
    if not run_ids:
        return
    ids = list(run_ids)
    connection = _lock(session)
    gone = connection.execute(_contributions(_OF_RUNS), {"run_ids": ids}).all()
    if not gone:
        return
    keys = [(g.metric_name, g.group_key) for g in gone]
    stored = {
        (r.metric_name, r.group_key): r
        for chunk in _chunks(keys, 400)
        for r in connection.execute(
            select(
                _T.c.metric_name, _T.c.group_key, _T.c.value_count, _T.c.value_min, _T.c.value_max
            ).where(tuple_(_T.c.metric_name, _T.c.group_key).in_(chunk))
        )
    }
    connection.execute(
        _SUBTRACT,
        [
            {
                "m": g.metric_name,
                "k": g.group_key,
                "rows": g.row_count,
                "count": g.value_count,
                "sum": g.value_sum,
                "nf": g.non_finite,
            }
            for g in gone
        ],
    )
    connection.execute(_DROP_EMPTY, [{"m": m, "k": k} for m, k in keys])
    extremes = []
    # Groups that lost an extreme, by their run-level columns (all but the test
    # name): the runs removed together mostly share them, so one read each.
    recompute: dict[tuple[Any, ...], list[Any]] = {}
    for g in gone:
        before = stored.get((g.metric_name, g.group_key))
        if before is None or g.value_count == 0:
            continue
        if before.value_count - g.value_count <= 0:
            extremes.append({"m": g.metric_name, "k": g.group_key, "lo": None, "hi": None})
        elif g.value_min <= before.value_min or g.value_max >= before.value_max:
            runs_key = tuple(getattr(g, name) for name in AGGREGATE_KEY_COLUMNS[1:])
            recompute.setdefault(runs_key, []).append(g)
    for runs_key, groups in recompute.items():
        found = _extremes(connection, runs_key, sorted({g.metric_name for g in groups}), ids)
        for g in groups:
            lo, hi = found.get((g.metric_name, g.group_key), (None, None))
            extremes.append({"m": g.metric_name, "k": g.group_key, "lo": lo, "hi": hi})
    if extremes:
        connection.execute(_SET_EXTREMES, extremes)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _extremes(
    connection: Connection, runs_key: tuple[Any, ...], metrics: list[str], excluded: list[str]
) -> dict[tuple[str, str], tuple[Any, Any]]:
    """Finite min and max per (metric, group) of the runs with these run-level columns,
    leaving out the runs being removed.

    Plain equality per column (``IS NULL`` for NULL), so the runs are found by
    ``idx_runs_model_engine_timestamp`` and only their metric rows are read;
    ``IS NOT DISTINCT FROM`` would defeat the indexes.
    """
    conditions = [Metric.metric_name.in_(metrics), Benchmark.run_id.not_in(excluded)]
    for column, wanted in zip(_ROW_KEYS[1:], runs_key, strict=True):
        conditions.append(column.is_(None) if wanted is None else column == wanted)
    rows = connection.execute(_contributions(and_(*conditions))).all()
    return {(r.metric_name, r.group_key): (r.value_min, r.value_max) for r in rows}


@contextmanager
def maintained(session: Session, run_ids: Sequence[str]) -> Iterator[None]:
    """Keep the aggregate right across any change to the rows of ``run_ids``.

    Their contribution is removed on entry and their rows' contribution added
    back on exit (not on an exception: the transaction is then rolled back
    anyway). Works for new runs (nothing to remove), deleted runs (nothing to
    add back), and re-derived metrics or hardware of existing runs alike.
    """
    ids = list(dict.fromkeys(run_ids))
    remove_runs(session, ids)
    yield
    add_runs(session, ids)


def rebuild(session: Session) -> int:
    """Recompute the whole aggregate from the rows (two statements); the number of groups."""
    connection = _lock(session)
    connection.execute(delete(_T))
    connection.execute(_T.insert().from_select(list(_COLUMNS), _contributions(true())))
    return int(connection.execute(select(func.count()).select_from(_T)).scalar_one())


# --- reads --------------------------------------------------------------------


def leaderboard(
    session: Session,
    metric: str,
    *,
    group_by: Sequence[str],
    per_test: bool,
    test_name: str | None,
    filters: Mapping[str, Any],
    order_by: str,
    descending: bool,
    limit: int | None,
) -> list[AggregateRow]:
    """count/avg/min/max of one metric per group from the aggregate (median ``None``).

    ``filters`` are equality filters on :data:`AGGREGATE_FILTERS` columns;
    arguments are validated by the caller (:meth:`ResultsRepository.leaderboard`).
    """
    chosen = tuple(sorted(filters))
    stmt = _leaderboard_statement(
        tuple(group_by),
        per_test,
        test_name is not None,
        chosen,
        order_by,
        descending,
        limit is not None,
    )
    params: dict[str, Any] = {f"f_{name}": filters[name] for name in chosen}
    params["metric"] = metric
    if test_name is not None:
        params["test_name"] = test_name
    if limit is not None:
        params["limit"] = limit
    rows = session.connection().execute(stmt, params).all()
    width = len(group_by)
    return [
        _aggregate_row(
            (
                dict(zip(group_by, row[:width], strict=True)),
                row[width] if per_test else test_name,
                metric,
                int(row[-5]),
                int(row[-1]),
                None if row[-4] is None else row[-4] / SUM_SCALE,  # inf, never an error
                row[-3],
                row[-2],
                None,
            )
        )
        for row in rows
    ]


_aggregate_row = row_builder(AggregateRow)


@cache
def _leaderboard_statement(
    group_by: tuple[str, ...],
    per_test: bool,
    by_test: bool,
    filters: tuple[str, ...],
    order_by: str,
    descending: bool,
    limited: bool,
) -> Select[Any]:
    """The aggregate's leaderboard statement for one shape of call, built once with its
    values as bound parameters: building it per call cost several times the query
    (the 55,200-row table answers a leaderboard in ~1 ms).

    Columns: the group keys, the test name when ``per_test``, then count, the
    scaled average, min, max and the non-finite count.
    """
    keys = [_T.c[g].label(f"g_{g}") for g in group_by]
    if per_test:
        keys.append(_T.c.test_name.label("g__test"))
    conditions = [_T.c.metric_name == bindparam("metric")]
    conditions += [_T.c[name] == bindparam(f"f_{name}") for name in filters]
    if by_test:
        conditions.append(_T.c.test_name == bindparam("test_name"))
    count = func.sum(_T.c.value_count)
    aggregates: dict[str, Any] = {
        "count": count,
        # Still scaled by SUM_SCALE (same order); unscaled in Python, where an
        # average beyond the largest double becomes inf instead of an error.
        "avg": type_coerce(
            case((count > 0, func.sum(_T.c.value_sum) / count), else_=None), Double()
        ),
        "min": type_coerce(func.min(_T.c.value_min), Double()),
        "max": type_coerce(func.max(_T.c.value_max), Double()),
    }
    group_columns = [k.element for k in keys]
    sort_key = aggregates[order_by] if order_by in aggregates else _T.c[order_by]
    stmt = (
        select(
            *keys,
            *(expr.label(name) for name, expr in aggregates.items()),
            func.sum(_T.c.non_finite).label("non_finite"),
        )
        .where(*conditions)
        .group_by(*group_columns)
        .order_by(
            (sort_key.desc() if descending else sort_key.asc()).nulls_last(),
            *(c.asc().nulls_last() for c in group_columns),
        )
    )
    if limited:
        stmt = stmt.limit(bindparam("limit", type_=Integer()))
    return stmt
