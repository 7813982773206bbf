"""The one results repository: saves and deletes with a fixed number of statements
(the dialect seam does the inserts), reads of runs (summaries, detail, documents,
counts, pages, ids, metric names, the tidy export) and analyses over them.
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    StatementLambdaElement,
    Subquery,
    and_,
    bindparam,
    case,
    delete,
    func,
    lambda_stmt,
    literal,
    or_,
    select,
    true,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from karr_db.dialects import for_connection, snapshot
from karr_db.documents import ValidatedDocument, load_document
from karr_db.engine import translated
from karr_db.errors import (
    AmbiguousIdError,
    FieldError,
    InvalidQueryError,
    NotFoundError,
    StillReferencedError,
    StorageError,
    ValidationError,
)
from karr_db.models import Benchmark, Hardware, Metric, QuickTest, Run, RunFingerprint
from karr_db.models.types import Double, dumps_document, parse_timestamp, utcnow
from karr_db.repositories import leaderboard_aggregate
from karr_db.repositories._common import Page, check_limit, found, page_rows
from karr_db.repositories._validate import checked
from karr_db.repositories.events import EventsRepository, EventType
from karr_db.repositories.leaderboard_aggregate.statements import NEGLIGIBLE
from karr_db.repositories.results import shapes
from karr_db.repositories.results.dto import (
    AggregateRow,
    Comparison,
    ComparisonRow,
    GroupCounts,
    MetricName,
    MetricPoint,
    MetricValueRow,
    OutcomeCounts,
    RunDetail,
    RunStats,
    RunSummary,
    SaveResult,
)
from karr_db.repositories.results.filters import (
    GROUP_FIELDS,
    LEADERBOARD_ORDER_FIELDS,
    ORDER_FIELDS,
    ModelMatch,
    RunFilter,
    decode_point,
    decode_run_cursor,
    encode_point,
    encode_run_cursor,
    filtered,
    filters_hardware,
    first_hardware_id,
    match_models,
    parse_filter,
    run_conditions,
    with_hardware,
)
from karr_db.repositories.results.rows import (
    BENCHMARK_INSERT_COLUMNS,
    HARDWARE_INSERT_COLUMNS,
    METRIC_INSERT_COLUMNS,
    RUN_INSERT_COLUMNS,
    bind_processor,
    hardware_row,
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
    SUMMARY_BY_CONTENT,
    SUMMARY_BY_ID,
    metric_rows,
    summary_select,
)

#: Shortest id ``short_ids`` gives: a UUID's first group, like git's 7-character default.
MIN_SHORT_ID = 8
#: How many candidates an ambiguous prefix lists.
_CANDIDATES_SHOWN = 10

#: PostgreSQL inserts of several documents at once (imports) use COPY, which
#: loads an import batch's metric rows faster than ``INSERT .. SELECT FROM
#: unnest``; for one run's rows the two are alike, and a single save keeps plain
#: INSERTs, visible to statement-level instrumentation.
COPY_FROM_DOCUMENTS = 2


@checked
class ResultsRepository:
    """Runs and their benchmarks, metrics and hardware: saves and deletes, reads,
    and analyses (stats, the leaderboard, metric history, comparisons).

    Bound to a session and the events repository its writes append to (reads and
    writes, in the session's transaction), or to a connection (reads only: a
    read-only unit of work's, or a session's for a caller that only reads; a
    write is refused with :class:`~karr_db.errors.StorageError` before any SQL).
    """

    def __init__(self, bind: Session | Connection, events: EventsRepository | None = None) -> None:
        """``events``: the events repository of the same session (the unit of work's),
        whose lock every write takes first and to which it appends; required with a
        session, none with a connection."""
        if isinstance(bind, Session):
            if events is None:
                raise TypeError(
                    "a results repository on a session needs the events repository of "
                    "that session (events=): its writes take the log's lock and append there"
                )
            self._writes: tuple[Session, EventsRepository] | None = (bind, events)
            self._connection: Connection | None = None
        else:
            if events is not None:
                raise TypeError("a results repository on a connection reads only: no events=")
            self._writes, self._connection = None, bind

    @property
    def connection(self) -> Connection:
        """The connection every statement runs on (the session's, in its transaction)."""
        if self._connection is not None:
            return self._connection
        return self.session.connection()

    @property
    def session(self) -> Session:
        """The session writes go through; a read-only repository has none."""
        return self._writing()[0]

    def _writing(self) -> tuple[Session, EventsRepository]:
        """The session writes go through and the events repository they append to; a
        read-only repository refuses the write here, before any SQL."""
        if self._writes is None:
            raise StorageError("writing", "a read-only unit of work cannot write")
        return self._writes

    # --- writes --------------------------------------------------------------------

    def _lock(self) -> EventsRepository:
        """Every write takes the event-log lock before its first read or row, like
        the operations repositories (see :meth:`EventsRepository.lock_log`): one
        lock order, so no two repository transactions can deadlock, and on SQLite
        the write lock before the existence check, so the upgrade cannot fail.

        The events repository the write appends to; a read-only repository refuses
        the write here, before any SQL."""
        events = self._writing()[1]
        events.lock_log()
        return events

    def save(self, document: str | bytes | Mapping[str, Any] | ValidatedDocument) -> SaveResult:
        """Store a result document (JSON text or parsed object); idempotent.

        The run id is derived from the content, so saving the same document
        again (in any process, on either dialect) returns the stored run with
        ``created=False``. A concurrent save of the same document loses the
        race on the primary key inside a SAVEPOINT and returns the winner's
        run. Raises :class:`ValidationError` for a bad document (nothing
        written). The event-log lock (on SQLite the write lock) is taken
        before the existence check, so the check-then-insert cannot be refused
        for a lock upgrade, nor deadlock against another repository write.
        """
        doc = document if isinstance(document, ValidatedDocument) else load_document(document)
        with translated("saving a run"):
            events = self._lock()
            existing = self._find_content(doc.run_id)
            if existing is not None:
                return SaveResult(run=existing, created=False)
            try:
                with self.session.begin_nested():
                    (summary,) = self._insert_many([doc], events)
            except IntegrityError:
                existing = self._find_content(doc.run_id)
                if existing is None:  # not a duplicate run: some other constraint
                    raise
                return SaveResult(run=existing, created=False)
        return SaveResult(run=summary, created=True)

    def save_many(
        self, documents: Sequence[str | bytes | Mapping[str, Any] | ValidatedDocument]
    ) -> list[SaveResult]:
        """Store many documents at the cost of a few statements in all; one result each, in order.

        The bulk path of imports: one query finds the runs already stored, and
        the new ones go in with one statement per table, in one SAVEPOINT. All
        documents are validated first (a :class:`ValidationError` writes
        nothing). If the bulk insert fails (a concurrent save of the same
        document, or a row the database refuses), each new document is saved
        on its own instead, so the error names the document that caused it
        and the others are kept.
        """
        if not isinstance(documents, list | tuple):
            raise ValidationError(
                "result documents", [FieldError("documents", "must be a list of documents")]
            )
        docs = [d if isinstance(d, ValidatedDocument) else load_document(d) for d in documents]
        with translated("saving runs"):
            events = self._lock()
            stored = self._summaries([d.run_id for d in docs])
            fresh: dict[str, ValidatedDocument] = {}
            for doc in docs:
                if doc.run_id not in stored:
                    fresh.setdefault(doc.run_id, doc)
            created: dict[str, RunSummary] = {}
            if fresh:
                try:
                    with self.session.begin_nested():
                        summaries = self._insert_many(list(fresh.values()), events)
                    created = {s.id: s for s in summaries}
                except IntegrityError:
                    for doc in fresh.values():
                        result = self.save(doc)
                        if result.created:
                            created[doc.run_id] = result.run
                        else:
                            stored[doc.run_id] = result.run
        results = []
        reported: set[str] = set()
        for doc in docs:
            if doc.run_id in created and doc.run_id not in reported:
                reported.add(doc.run_id)
                results.append(SaveResult(run=created[doc.run_id], created=True))
            else:
                run = stored.get(doc.run_id) or created[doc.run_id]
                results.append(SaveResult(run=run, created=False))
        return results

    def _find_content(self, fingerprint: str) -> RunSummary | None:
        """The stored run holding this content (see :data:`SUMMARY_BY_CONTENT`), if any."""
        row = self.connection.execute(SUMMARY_BY_CONTENT, {"fingerprint": fingerprint}).first()
        return None if row is None else shapes.summary(row)

    def _summaries(self, run_ids: Sequence[str]) -> dict[str, RunSummary]:
        """The stored runs holding the contents ``run_ids`` (content-derived ids, i.e.
        fingerprints), by fingerprint; one statement per 500 ids.

        A run is found by its fingerprint row (adopted runs keep legacy ids) or,
        lacking one, by its id; where both exist the fingerprint's owner wins,
        as in :meth:`save`.
        """
        unique = list(dict.fromkeys(run_ids))
        by_fingerprint: dict[str, RunSummary] = {}
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            owners = select(RunFingerprint.run_id).where(RunFingerprint.fingerprint.in_(chunk))
            base = (
                summary_select()
                .add_columns(RunFingerprint.fingerprint.label("_fingerprint"))
                .outerjoin(RunFingerprint, RunFingerprint.run_id == Run.id)
            )
            # Two branches, not one OR: PostgreSQL answers "id IN (subquery) OR id IN
            # (list)" with a scan of every run; each branch alone uses an index.
            stmt = union_all(base.where(Run.id.in_(owners)), base.where(Run.id.in_(chunk)))
            by_id: dict[str, RunSummary] = {}
            for row in self.connection.execute(stmt):
                summary = shapes.summary(tuple(row)[:-1])  # the last column is the fingerprint
                if row._fingerprint is not None:
                    by_fingerprint[row._fingerprint] = summary
                by_id[row.id] = summary
            for fingerprint in chunk:
                if fingerprint not in by_fingerprint and fingerprint in by_id:
                    by_fingerprint[fingerprint] = by_id[fingerprint]
        return by_fingerprint

    def _insert_many(
        self, docs: Sequence[ValidatedDocument], events: EventsRepository
    ) -> list[RunSummary]:
        """Insert validated documents with a fixed number of statements, whatever their number.

        Rows go to the driver as plain tuples (``executemany`` on SQLite, one
        set-based ``INSERT .. SELECT FROM unnest(..)`` per table on
        PostgreSQL), converted by the columns' own bind processors: the ORM's
        bulk insert builds a parameter dictionary per metric row, and psycopg's
        ``executemany`` runs one INSERT per row on the server.
        """
        connection = self.connection
        dialect = connection.dialect
        now = utcnow()
        hardware, summaries = [], []
        for doc in docs:
            m = doc.model
            row = hardware_row(doc)
            if row is not None:
                hardware.append(row)
            gpu_model, gpu_count, environment_type = (
                (None, None, None) if row is None else (row[1], row[3], row[7])
            )
            summaries.append(
                RunSummary(
                    id=doc.run_id,
                    model=m.model,
                    engine=m.engine,
                    suite_name=m.suite_name,
                    timestamp=parse_timestamp(m.timestamp),
                    passed=m.passed,
                    total_benchmarks=m.total_benchmarks,
                    passed_count=m.passed_count,
                    failed_count=m.failed_count,
                    total_time_seconds=m.total_time_seconds,
                    kitt_version=m.kitt_version,
                    created_at=now,
                    gpu_model=gpu_model,
                    gpu_count=gpu_count,
                    environment_type=environment_type,
                )
            )

        stamp = bind_processor(Run.__table__.c.timestamp, dialect)
        flag = bind_processor(Run.__table__.c.passed, dialect)
        number = bind_processor(Run.__table__.c.total_time_seconds, dialect)
        created = stamp(now)
        run_rows = [
            (
                s.id,
                s.model,
                s.engine,
                s.suite_name,
                stamp(s.timestamp),
                flag(s.passed),
                s.total_benchmarks,
                s.passed_count,
                s.failed_count,
                number(s.total_time_seconds),
                s.kitt_version,
                dumps_document(doc.document),
                created,
            )
            for s, doc in zip(summaries, docs, strict=True)
        ]
        copy = len(docs) >= COPY_FROM_DOCUMENTS
        seam = for_connection(connection)
        bulk_insert = seam.bulk_insert
        bulk_insert(connection, "runs", RUN_INSERT_COLUMNS, run_rows, copy=copy)
        # The content's owner: a concurrent save of the same content (or
        # re-derivation giving it to an adopted run) conflicts here.
        bulk_insert(
            connection,
            "run_fingerprints",
            ("fingerprint", "run_id"),
            [(s.id, s.id) for s in summaries],
            copy=copy,
        )
        bulk_insert(connection, "hardware", HARDWARE_INSERT_COLUMNS, hardware, copy=copy)

        bench_rows = [
            (
                doc.run_id,
                r.test_name,
                r.test_version,
                r.run_number,
                flag(r.passed),
                stamp(parse_timestamp(r.timestamp)),
                created,
            )
            for doc in docs
            for r in doc.model.results
        ]
        # One statement (two on SQLite); the ids in row order.
        ids = seam.insert_numbered(connection, "benchmarks", BENCHMARK_INSERT_COLUMNS, bench_rows)
        flats = (flat for doc in docs for flat in doc.metrics)
        # Flattened values are floats already; the only conversion left is
        # SQLite's NaN text (see Double). Inline: this runs ~200 times a run.
        nan = seam.stored_nan
        value_rows = [
            (benchmark_id, f.name, f.value if nan is None or f.value == f.value else nan)
            for benchmark_id, flat in zip(ids, flats, strict=True)
            for f in flat
        ]
        bulk_insert(connection, "metrics", METRIC_INSERT_COLUMNS, value_rows, copy=copy)

        events.append_many(
            (
                EventType.RUN_SAVED,
                s.id,
                {"model": s.model, "engine": s.engine, "suite_name": s.suite_name},
            )
            for s in summaries
        )
        # Beyond the reference: the leaderboard aggregate follows every save (one statement).
        leaderboard_aggregate.add_runs(self.session, [s.id for s in summaries])
        return summaries

    def delete(self, run_id: str, *, detach: bool = False) -> None:
        """Delete a run; its benchmarks, metrics and hardware go by ON DELETE CASCADE.

        A run that quick tests point to is refused with
        :class:`StillReferencedError` naming them, unless ``detach`` is true,
        which clears their ``result_id`` in the same transaction.
        """
        with translated("deleting a run"):
            events = self._lock()
            referencing = list(
                self.session.scalars(
                    select(QuickTest.id).where(QuickTest.result_id == run_id).order_by(QuickTest.id)
                )
            )
            if referencing and not detach:
                raise StillReferencedError(
                    "run", run_id, [f"quick test {qid}" for qid in referencing]
                )
            try:
                with self.session.begin_nested():
                    if referencing:
                        self.session.execute(
                            update(QuickTest)
                            .where(QuickTest.result_id == run_id)
                            .values(result_id=None)
                            .execution_options(synchronize_session=False)
                        )
                    leaderboard_aggregate.remove_runs(self.session, [run_id])
                    deleted = self.session.execute(
                        delete(Run)
                        .where(Run.id == run_id)
                        .execution_options(synchronize_session=False)
                    )
                    if getattr(deleted, "rowcount", 0) == 0:
                        raise NotFoundError("run", run_id)
                    events.append(EventType.RUN_DELETED, source_id=run_id)
            except IntegrityError:
                # A quick test started pointing at the run after the check above.
                raise StillReferencedError("run", run_id, ["a quick test"]) from None

    # --- reads ---------------------------------------------------------------------

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

    # --- analyses ------------------------------------------------------------------

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
        ``non_finite`` (see :mod:`karr_db.repositories.results`). ``per_test`` adds the
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
        present = {row[0] for row in rows}
        missing = [i for i in ids if i not in present]
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

    # --- the page of runs (last in the class: below it, ``list`` in an annotation would
    # name this method, not the builtin) --------------------------------------------

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


# --- a page of a metric's history -----------------------------------------------

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
