"""Run-id prefixes, stored metric names and the tidy (one row per value) export.

Kept apart from :mod:`karr_db.repositories.results` so that module stays about
saving and querying documents; :class:`~karr_db.repositories.results.ResultsRepository`
exposes each function as a method (``resolve_id``, ``short_ids``, ``metric_names``,
``iter_metric_values``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import aliased

from karr_db.errors import AmbiguousIdError, FieldError, NotFoundError, ValidationError
from karr_db.models import Benchmark, Hardware, Metric, Run
from karr_db.repositories.results.dto import ResultsDTO
from karr_db.repositories.results.filters import with_hardware

__all__ = [
    "MIN_SHORT_ID",
    "TIDY_COLUMNS",
    "MetricName",
    "MetricValueRow",
    "nearest_metrics",
]

#: Shortest id ``short_ids`` gives: a UUID's first group, like git's 7-character default.
MIN_SHORT_ID = 8
#: How many candidates an ambiguous prefix lists.
_CANDIDATES_SHOWN = 10


class MetricName(ResultsDTO):
    """A stored metric name, with how many values it has (per benchmark test)."""

    metric: str
    test_name: str | None
    count: int


class MetricValueRow(NamedTuple):
    """One metric value with what identifies it: a row of the tidy export.

    A plain tuple, not a DTO: an export streams millions of these.
    """

    run_id: str
    model: str | None
    engine: str | None
    suite_name: str | None
    timestamp: datetime | None
    gpu_model: str | None
    test_name: str | None
    run_number: int | None
    metric: str
    value: float | None


#: The tidy export's column names, in order.
TIDY_COLUMNS: tuple[str, ...] = MetricValueRow._fields


def resolve_id(connection: Connection, prefix: str) -> str:
    """The one run whose id is ``prefix`` or starts with it.

    An exact id wins even when it is also the prefix of longer ids (a legacy
    database may hold ids of any shape). Raises :class:`NotFoundError` when
    nothing matches and :class:`AmbiguousIdError` (listing candidates) when
    several do.
    """
    if not prefix or not prefix.strip():
        raise ValidationError("run id", [FieldError("run_id", "must not be empty")])
    exact = connection.scalar(select(Run.id).where(Run.id == prefix))
    if exact is not None:
        return exact
    # LIKE with the prefix escaped: ids may contain % or _. The primary key
    # index serves it on SQLite; on PostgreSQL (non-C collation) it scans ids.
    matches = list(
        connection.scalars(
            select(Run.id)
            .where(Run.id.startswith(prefix, autoescape=True))
            .order_by(Run.id)
            .limit(_CANDIDATES_SHOWN + 1)
        )
    )
    if not matches:
        raise NotFoundError("run", prefix)
    if len(matches) > 1:
        total = len(matches)
        if total > _CANDIDATES_SHOWN:
            total = int(
                connection.scalar(
                    select(func.count())
                    .select_from(Run)
                    .where(Run.id.startswith(prefix, autoescape=True))
                )
                or 0
            )
        raise AmbiguousIdError("run", prefix, matches[:_CANDIDATES_SHOWN], total)
    return matches[0]


def _common_prefix(a: str, b: str | None) -> int:
    if b is None:
        return 0
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def short_ids(
    connection: Connection, run_ids: Sequence[str], *, min_length: int = MIN_SHORT_ID
) -> dict[str, str]:
    """The shortest prefix (at least ``min_length``) of each id that no other stored id shares.

    One statement: each id's neighbours in id order (the primary key index),
    since the longest prefix an id shares with any other is the one it shares
    with a neighbour. Ids not stored are shortened against the stored ones.
    """
    ids = list(dict.fromkeys(run_ids))
    if not ids:
        return {}
    other = aliased(Run)
    below = select(func.max(other.id)).where(other.id < Run.id).scalar_subquery()
    above = select(func.min(other.id)).where(other.id > Run.id).scalar_subquery()
    rows = connection.execute(select(Run.id, below, above).where(Run.id.in_(ids))).all()
    neighbours = {row[0]: (row[1], row[2]) for row in rows}
    result = {}
    for run_id in ids:
        lower, upper = neighbours.get(run_id, (None, None))
        shared = max(_common_prefix(run_id, lower), _common_prefix(run_id, upper))
        result[run_id] = run_id[: max(min_length, shared + 1)]
    return result


def metric_names(
    connection: Connection, *, test_name: str | None = None, per_test: bool = True
) -> list[MetricName]:
    """Every stored metric name with its number of values, per test (one grouped statement)."""
    keys: list[Any] = [Metric.metric_name]
    if per_test:
        keys.append(Benchmark.test_name)
    stmt = select(*keys, func.count()).select_from(Metric)
    if per_test or test_name is not None:
        stmt = stmt.join(Benchmark, Benchmark.id == Metric.benchmark_id)
    if test_name is not None:
        stmt = stmt.where(Benchmark.test_name == test_name)
    stmt = stmt.group_by(*keys).order_by(*(k.asc().nulls_last() for k in keys))
    return [
        MetricName(
            metric=row[0],
            test_name=row[1] if per_test else test_name,
            count=row[-1],
        )
        for row in connection.execute(stmt)
    ]


def nearest_metrics(name: str, known: Sequence[str], n: int = 3) -> list[str]:
    """The stored names closest to a mistyped one (difflib's ratio, as Python's own
    "did you mean" does), case-insensitively."""
    lowered = {k.lower(): k for k in known}
    return [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n, 0.6)]


def iter_metric_values(
    connection: Connection,
    conditions: Sequence[Any],
    params: dict[str, Any],
    *,
    batch_size: int = 2000,
) -> Iterator[MetricValueRow]:
    """Every metric value of the matching runs, one row each, streamed.

    One statement read with ``yield_per`` (a server-side cursor on
    PostgreSQL), so memory stays flat however many values there are; the
    connection must stay open while iterating. Rows come by run id, then in
    storage order of benchmarks and metrics. The GPU is the run's first
    hardware row, as everywhere else. ``params`` are the values ``conditions`` bind.
    """
    stmt = with_hardware(
        select(
            Run.id,
            Run.model,
            Run.engine,
            Run.suite_name,
            Run.timestamp,
            Hardware.gpu_model,
            Benchmark.test_name,
            Benchmark.run_number,
            Metric.metric_name,
            Metric.metric_value,
        )
        .select_from(Metric)
        .join(Benchmark, Benchmark.id == Metric.benchmark_id)
        .join(Run, Run.id == Benchmark.run_id)
    )
    stmt = (
        stmt.where(*conditions)
        .order_by(Run.id, Benchmark.id, Metric.id)
        .execution_options(yield_per=batch_size)
    )
    for row in connection.execute(stmt, params):
        yield MetricValueRow._make(row)
