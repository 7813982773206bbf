"""Reads of runs: summaries, full detail, documents, counts, pages, ids and
metric names.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import select

from karr_db.dialects import for_connection, snapshot
from karr_db.engine import translated
from karr_db.errors import InvalidQueryError, NotFoundError
from karr_db.models import Run
from karr_db.repositories._common import Page, build, check_limit, found, page_rows
from karr_db.repositories.results import lookup as results_lookup
from karr_db.repositories.results import shapes
from karr_db.repositories.results.base import ResultsBase
from karr_db.repositories.results.dto import RunDetail, RunSummary
from karr_db.repositories.results.filters import (
    ORDER_FIELDS,
    ModelMatch,
    RunFilter,
    decode_run_cursor,
    encode_run_cursor,
    filter_params,
    filter_shape,
    filters_hardware,
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
    METRIC_COLUMNS,
    RUN_HARDWARE,
    RUN_SUMMARY,
    SUMMARY_BY_ID,
)


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
        params = filter_params(parse_filter(filters))
        check_limit(batch_size, name="batch_size")
        shape = filter_shape(params)
        stmt = (
            with_hardware(select(Run.id, Run.raw_json).select_from(Run), filters_hardware(shape))
            .where(*run_conditions(shape))
            .order_by(Run.id)
            .execution_options(yield_per=batch_size)
        )
        connection = self.connection
        with translated("exporting runs"), snapshot(connection):
            yield from ((row[0], row[1]) for row in connection.execute(stmt, params))

    def count(self, filters: RunFilter | Mapping[str, Any] | None = None) -> int:
        """How many runs match (one statement, built once per set of filters)."""
        params = filter_params(parse_filter(filters))
        with translated("counting runs"):
            connection = self.connection
            return int(connection.execute(shapes.count_statement(params), params).scalar_one())

    # --- ids, metric names, tidy export (karr_db.repositories.results.lookup) ----

    def resolve_id(self, prefix: str) -> str:
        """The full id of the one run whose id starts with ``prefix`` (git-style);
        :class:`AmbiguousIdError` lists the candidates when several do."""
        with translated("resolving a run id"):
            return results_lookup.resolve_id(self.connection, prefix)

    def short_ids(
        self, run_ids: Sequence[str], *, min_length: int = results_lookup.MIN_SHORT_ID
    ) -> dict[str, str]:
        """The shortest unique prefix of each id (at least ``min_length`` characters)."""
        with translated("shortening run ids"):
            return results_lookup.short_ids(self.connection, run_ids, min_length=min_length)

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
    ) -> list[results_lookup.MetricName]:
        """Stored metric names with their value counts, per test unless ``per_test=False``."""
        with translated("listing metric names"):
            return results_lookup.metric_names(
                self.connection, test_name=test_name, per_test=per_test
            )

    def iter_metric_values(
        self,
        filters: RunFilter | Mapping[str, Any] | None = None,
        *,
        run_ids: Sequence[str] | None = None,
        batch_size: int = 2000,
    ) -> Iterator[results_lookup.MetricValueRow]:
        """One row per stored metric value of the matching runs (tidy data), streamed;
        ``run_ids`` restricts to those runs."""
        if not 1 <= batch_size <= 100_000:
            raise InvalidQueryError(f"batch_size must be between 1 and 100000, got {batch_size}")
        params = filter_params(parse_filter(filters))
        conditions = run_conditions(filter_shape(params))
        if run_ids is not None:
            conditions.append(Run.id.in_(list(run_ids)))
        connection = self.connection
        with translated("exporting metric values"), snapshot(connection):
            yield from results_lookup.iter_metric_values(
                connection, conditions, params, batch_size=batch_size
            )

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
        params = filter_params(f)
        after: str | None = None
        if cursor is not None:
            value, last_id = decode_run_cursor(cursor, order_by, descending)
            after = "null" if value is None else "value"
            params["c_id"] = last_id
            if value is not None:
                params["c_value"] = value
        connection = self.connection
        stmt = shapes.list_statement(
            params,
            column,
            descending,
            after,
            bool(offset),
            lateral=for_connection(connection).lateral_pages,
        )
        params["limit"] = limit + 1
        if offset:
            params["offset"] = offset
        with translated("listing runs"):
            rows, items = page_rows(connection.execute(stmt, params), limit, shapes.summary)
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            value = last[shapes.SUMMARY_INDEX[order_by]]
            next_cursor = encode_run_cursor(order_by, descending, value, last[0])
        return build(Page[RunSummary], items=items, next_cursor=next_cursor)
