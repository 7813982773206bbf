"""Reads of runs: summaries, full detail, documents, counts, pages, ids,
metric names and the tidy (one row per value) export.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Subquery,
    and_,
    bindparam,
    func,
    lambda_stmt,
    or_,
    select,
    true,
)
from sqlalchemy.orm import aliased

from karr_db.dialects import for_connection, snapshot
from karr_db.engine import translated
from karr_db.errors import (
    AmbiguousIdError,
    FieldError,
    InvalidQueryError,
    NotFoundError,
    ValidationError,
)
from karr_db.models import Benchmark, Hardware, Metric, Run
from karr_db.repositories._common import Page, check_limit, found, page_rows
from karr_db.repositories.results import shapes
from karr_db.repositories.results.analysis import metric_rows
from karr_db.repositories.results.base import ResultsBase
from karr_db.repositories.results.dto import MetricName, MetricValueRow, RunDetail, RunSummary
from karr_db.repositories.results.filters import (
    ORDER_FIELDS,
    ModelMatch,
    RunFilter,
    decode_run_cursor,
    encode_run_cursor,
    filtered,
    filters_hardware,
    first_hardware_id,
    match_models,
    parse_filter,
    run_conditions,
    with_hardware,
)
from karr_db.repositories.results.statements import (
    BENCHMARK_COLUMNS,
    DETAIL,
    DETAIL_BENCHMARKS,
    DETAIL_METRICS,
    DETAIL_RUN,
    HEADLINE,
    METRIC_COLUMNS,
    RUN_COLUMNS,
    RUN_HARDWARE,
    RUN_SUMMARY,
    SUMMARY_BY_ID,
)

#: Shortest id ``short_ids`` gives: a UUID's first group, like git's 7-character default.
MIN_SHORT_ID = 8
#: How many candidates an ambiguous prefix lists.
_CANDIDATES_SHOWN = 10


class ResultsReads(ResultsBase):
    """The reads of :class:`~karr_db.repositories.results.ResultsRepository`."""

    def find_summary(self, run_id: str) -> RunSummary | None:
        """One run's columns and hardware headline (one statement), or ``None``."""
        with translated("reading a run"):
            # A prebuilt Core statement: every save starts with this lookup, and
            # building and compiling the statement anew costs more than running it.
            row = self.connection.execute(SUMMARY_BY_ID, {"run_id": run_id}).first()
        return None if row is None else shapes.summary(row)

    def get_summary(self, run_id: str) -> RunSummary:
        """One run's summary; :class:`NotFoundError` naming it when there is none."""
        return found("run", run_id, self.find_summary(run_id))

    def get(self, run_id: str) -> RunDetail:
        """A run in full; :class:`NotFoundError` naming it when there is none."""
        return found("run", run_id, self.find(run_id))

    def find(self, run_id: str) -> RunDetail | None:
        """A run in full, or ``None``: the run with its hardware, its benchmarks and
        their metrics, read in one snapshot: one statement on PostgreSQL, three in
        one read-only transaction on SQLite (see :mod:`.statements`).

        Plain column selects, not ORM entities: loading hundreds of Metric objects
        into the identity map and validating the DTOs costs many times the queries.
        """
        connection = self.connection
        params = {"run_id": run_id}
        benchmarks: list[Any]
        metrics: list[Any]
        with translated("reading a run"):
            if for_connection(connection).round_trips:
                rows = connection.execute(DETAIL, params).all()
                if not rows:
                    return None
                run = rows[0]
                benchmarks = [BENCHMARK_COLUMNS(r) for r in rows if r[0] == 1]
                metrics = [METRIC_COLUMNS(r) for r in rows if r[0] == 2]
            else:
                with snapshot(connection):
                    first = connection.execute(DETAIL_RUN, params).first()
                    if first is None:
                        return None
                    run = first
                    benchmarks = list(connection.execute(DETAIL_BENCHMARKS, params).all())
                    metrics = list(connection.execute(DETAIL_METRICS, params).all())
        by_benchmark: dict[int, dict[str, float | None]] = {b[0]: {} for b in benchmarks}
        for benchmark_id, name, value in metrics:
            by_benchmark[benchmark_id][name] = value
        return shapes.detail(
            (
                *run[RUN_SUMMARY],
                [shapes.benchmark((*b, by_benchmark[b[0]])) for b in benchmarks],
                None if run[1] is None else shapes.hardware(RUN_HARDWARE(run)),
            )
        )

    def get_document(self, run_id: str) -> dict[str, Any]:
        """The stored document, equal to the one saved (NaN and infinities as floats)."""
        with translated("reading a run"):
            row = self.connection.execute(select(Run.raw_json).where(Run.id == run_id)).first()
        if row is None:
            raise NotFoundError("run", run_id)
        document: dict[str, Any] = row[0]
        return document

    def iter_documents(
        self, filters: RunFilter | Mapping[str, Any] | None = None, *, batch_size: int = 100
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(run id, document) of every matching run, streamed in batches.

        Uses ``yield_per`` (a server-side cursor on PostgreSQL, in one snapshot),
        so memory does not grow with the number of runs; the unit of work must
        stay open while iterating.
        """
        f = parse_filter(filters)
        check_limit(batch_size, name="batch_size")
        conditions, params = run_conditions(f)
        stmt = (
            with_hardware(select(Run.id, Run.raw_json).select_from(Run), filters_hardware(f))
            .where(*conditions)
            .order_by(Run.id)
            .execution_options(yield_per=batch_size)
        )
        connection = self.connection
        with translated("exporting runs"), snapshot(connection):
            yield from ((row[0], row[1]) for row in connection.execute(stmt, params))

    def count(self, filters: RunFilter | Mapping[str, Any] | None = None) -> int:
        """How many runs match (one statement)."""
        # count(*), not count(id): without a column the count is answered from an
        # index alone (idx_runs_passed, say).
        params: dict[str, Any] = {}
        stmt = lambda_stmt(
            lambda: select(func.count()).select_from(Run), global_track_bound_values=False
        )
        stmt = filtered(stmt, parse_filter(filters), params)
        with translated("counting runs"):
            return int(self.connection.execute(stmt, params).scalar_one())

    # --- ids, metric names, tidy export ---------------------------------------------

    def resolve_id(self, prefix: str) -> str:
        """The full id of the one run whose id is ``prefix`` or starts with it (git-style).

        An exact id wins even when it is also the prefix of longer ids (a legacy
        database may hold ids of any shape). Raises :class:`NotFoundError` when
        nothing matches and :class:`AmbiguousIdError` (listing candidates) when
        several do.
        """
        if not prefix or not prefix.strip():
            raise ValidationError("run id", [FieldError("run_id", "must not be empty")])
        # LIKE with the prefix escaped: ids may contain % or _. The primary key
        # index serves it on SQLite; on PostgreSQL (non-C collation) it scans ids.
        starting = Run.id.startswith(prefix, autoescape=True)
        connection = self.connection
        with translated("resolving a run id"):
            exact = connection.scalar(select(Run.id).where(Run.id == prefix))
            if exact is not None:
                return exact
            matches = list(
                connection.scalars(
                    select(Run.id).where(starting).order_by(Run.id).limit(_CANDIDATES_SHOWN + 1)
                )
            )
            if not matches:
                raise NotFoundError("run", prefix)
            if len(matches) == 1:
                return matches[0]
            total = len(matches)
            if total > _CANDIDATES_SHOWN:
                count = select(func.count()).select_from(Run).where(starting)
                total = int(connection.scalar(count) or 0)
        raise AmbiguousIdError("run", prefix, matches[:_CANDIDATES_SHOWN], total)

    def short_ids(
        self, run_ids: Sequence[str], *, min_length: int = MIN_SHORT_ID
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
        with translated("shortening run ids"):
            rows = self.connection.execute(select(Run.id, below, above).where(Run.id.in_(ids)))
            neighbours = {row[0]: (row[1], row[2]) for row in rows}
        result = {}
        for run_id in ids:
            near = [n for n in neighbours.get(run_id, ()) if n is not None]
            # commonprefix compares characters, which is what an id prefix is.
            common = (len(os.path.commonprefix([run_id, n])) for n in near)  # noqa: RUF071
            shared = max(common, default=0)
            result[run_id] = run_id[: max(min_length, shared + 1)]
        return result

    def match_models(self, text: str) -> ModelMatch:
        """The stored model names ``text`` selects: itself when stored, else by
        glob (``*``, ``?``, ``[...]``) or substring, ignoring case
        (:class:`~karr_db.repositories.results.filters.ModelMatch`). Pass
        ``{"models": match.models}`` as a filter to select their runs."""
        with translated("matching model names"):
            stored = self.connection.scalars(
                select(Run.model).where(Run.model.is_not(None)).distinct()
            ).all()
        return match_models(text, (name for name in stored if name is not None))

    def metric_names(
        self, *, test_name: str | None = None, per_test: bool = True
    ) -> list[MetricName]:
        """Stored metric names with their value counts, per test unless ``per_test=False``
        (one grouped statement)."""
        keys: list[Any] = [Metric.metric_name]
        if per_test:
            keys.append(Benchmark.test_name)
        stmt = select(*keys, func.count()).select_from(Metric)
        if per_test or test_name is not None:
            stmt = stmt.join(Benchmark, Benchmark.id == Metric.benchmark_id)
        if test_name is not None:
            stmt = stmt.where(Benchmark.test_name == test_name)
        stmt = stmt.group_by(*keys).order_by(*(k.asc().nulls_last() for k in keys))
        with translated("listing metric names"):
            return [
                MetricName(
                    metric=row[0], test_name=row[1] if per_test else test_name, count=row[-1]
                )
                for row in self.connection.execute(stmt)
            ]

    def iter_metric_values(
        self,
        filters: RunFilter | Mapping[str, Any] | None = None,
        *,
        run_ids: Sequence[str] | None = None,
        batch_size: int = 2000,
    ) -> Iterator[MetricValueRow]:
        """One row per stored metric value of the matching runs (tidy data), streamed;
        ``run_ids`` restricts to those runs.

        One statement read with ``yield_per`` (a server-side cursor on PostgreSQL,
        in one snapshot), so memory stays flat however many values there are; the
        unit of work must stay open while iterating. Rows come by run id, then in
        storage order of benchmarks and metrics. The GPU is the run's first
        hardware row, as everywhere else.
        """
        if not 1 <= batch_size <= 100_000:
            raise InvalidQueryError(f"batch_size must be between 1 and 100000, got {batch_size}")
        conditions, params = run_conditions(parse_filter(filters))
        if run_ids is not None:
            conditions.append(Run.id.in_(list(run_ids)))
        stmt = (
            with_hardware(
                metric_rows(
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
            )
            .where(*conditions)
            .order_by(Run.id, Benchmark.id, Metric.id)
            .execution_options(yield_per=batch_size)
        )
        connection = self.connection
        with translated("exporting metric values"), snapshot(connection):
            yield from (MetricValueRow._make(row) for row in connection.execute(stmt, params))

    def list(
        self,
        filters: RunFilter | Mapping[str, Any] | None = None,
        *,
        order_by: str = "timestamp",
        descending: bool = True,
        limit: int = 50,
        cursor: str | None = None,
        offset: int | None = None,
    ) -> Page[RunSummary]:
        """One page of run summaries (one statement).

        Page on with ``cursor=page.next_cursor`` (keyset: stable while runs are
        inserted) or with ``offset``; not both.
        """
        f = parse_filter(filters)
        if order_by not in ORDER_FIELDS:
            raise InvalidQueryError(
                f"unknown order field {order_by!r}; use one of {', '.join(ORDER_FIELDS)}"
            )
        check_limit(limit)
        if cursor is not None and offset is not None:
            raise InvalidQueryError("pass either a cursor or an offset, not both")
        if offset is not None and offset < 0:
            raise InvalidQueryError(f"offset must not be negative, got {offset}")
        column = ORDER_FIELDS[order_by]
        keyset = _KEYSETS[order_by, descending]
        # The lambdas hold the column and the keyset order, and track what decides them.
        shape = [order_by, descending]
        connection = self.connection
        params: dict[str, Any] = {"limit": limit + 1}
        hardware_filtered = filters_hardware(f)
        if hardware_filtered:
            stmt = lambda_stmt(
                lambda: (
                    select(*RUN_COLUMNS, *HEADLINE)
                    .select_from(Run)
                    .order_by(*keyset)
                    .limit(bindparam("limit", type_=Integer()))
                ),
                track_on=shape,
                global_track_bound_values=False,
            )
        else:
            stmt = lambda_stmt(
                lambda: (
                    select(*RUN_COLUMNS)
                    .order_by(*keyset)
                    .limit(bindparam("limit", type_=Integer()))
                ),
                track_on=shape,
                global_track_bound_values=False,
            )
        stmt = filtered(stmt, f, params)
        if cursor is not None:
            value, params["c_id"] = decode_run_cursor(cursor, order_by, descending)
            if value is None:
                stmt = stmt.add_criteria(
                    lambda s: s.where(_after(column, keyset, null=True)), track_on=shape
                )
            else:
                stmt = stmt.add_criteria(
                    lambda s: s.where(_after(column, keyset, null=False)), track_on=shape
                )
                params["c_value"] = value
        if offset:
            stmt += lambda s: s.offset(bindparam("offset", type_=Integer()))
            params["offset"] = offset
        # The page is chosen first, its headline looked up after (see below),
        # unless a hardware filter needs the headline before the limit.
        if not hardware_filtered and for_connection(connection).lateral_pages:
            stmt = stmt.add_criteria(
                lambda s: _headline(s.subquery("page"), column, keyset, lateral=True),
                track_on=shape,
            )
        elif not hardware_filtered:
            stmt = stmt.add_criteria(
                lambda s: _headline(s.subquery("page"), column, keyset, lateral=False),
                track_on=shape,
            )
        with translated("listing runs"):
            rows, items = page_rows(connection.execute(stmt, params), limit, shapes.summary)
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            value = last[shapes.SUMMARY_INDEX[order_by]]
            next_cursor = encode_run_cursor(order_by, descending, value, last[0])
        return Page[RunSummary](items=items, next_cursor=next_cursor)


# --- the page of ``list``: limit first, hardware after ------------------------------
#
# A page shows each run's hardware headline (its first hardware row). Joining that
# before the LIMIT made PostgreSQL hash-join a sequential scan of every hardware
# row and run the correlated ``min(hardware.id)`` once per matching run, then sort
# them all, a cost growing with history. Here the page of run ids is chosen from
# ``runs`` alone (walking ``idx_runs_model_engine_latest``, revision 0009, beyond
# the reference, in the query's own order), and only its ``limit`` rows look up
# their headline: a LATERAL index lookup on PostgreSQL, the correlated ``min(id)``
# on SQLite (which has no LATERAL and already plans that as an index lookup per
# row). A filter on a hardware column (GPU, environment) must see the headline
# before the limit, so those pages keep the join inside.


def _ordering(column: Any, run_id: Any, descending: bool) -> list[Any]:
    """(value NULLS LAST, id) in the page's direction: the keyset order of the cursors."""
    order = column.desc() if descending else column.asc()
    return [order.nulls_last(), run_id.desc() if descending else run_id.asc()]


#: The keyset order of each order field and direction, built once.
_KEYSETS = {
    (name, descending): _ordering(column, Run.id, descending)
    for name, column in ORDER_FIELDS.items()
    for descending in (True, False)
}


def _descending(keyset: list[Any]) -> bool:
    """Whether the keyset order (:func:`_ordering`) is descending."""
    return bool(keyset[1].compare(Run.id.desc()))


def _after(column: Any, keyset: list[Any], *, null: bool) -> ColumnElement[bool]:
    """The rows after the cursor's order value ``c_value`` (``null``: NULL) and run id
    ``c_id`` in the keyset order: NULLs last, then by id."""
    beyond = operator.lt if _descending(keyset) else operator.gt
    id_after = beyond(Run.id, bindparam("c_id", type_=Run.id.type))
    if null:
        return and_(column.is_(None), id_after)
    value = bindparam("c_value", type_=column.type)
    return or_(column.is_(None), beyond(column, value), and_(column == value, id_after))


def _headline(page: Subquery, column: Any, keyset: list[Any], *, lateral: bool) -> Select[Any]:
    """The runs of ``page`` with their hardware headline, in the page's order.

    The columns are the summary's, named as :class:`RunSummary`'s fields (the
    order value is read from its own column, not selected twice).
    """
    if lateral:
        headline = (
            select(*HEADLINE)
            .where(Hardware.run_id == page.c.id)
            .order_by(Hardware.id)
            .limit(1)
            .lateral("headline")
        )
        joined = page.outerjoin(headline, true())
        hardware_columns: list[Any] = [headline.c[c.key] for c in HEADLINE]
    else:
        joined = page.outerjoin(
            Hardware,
            and_(Hardware.run_id == page.c.id, Hardware.id == first_hardware_id(page.c.id, page)),
        )
        hardware_columns = list(HEADLINE)
    return (
        select(*page.c, *hardware_columns)
        .select_from(joined)
        .order_by(*_ordering(page.c[column.key], page.c.id, _descending(keyset)))
    )
