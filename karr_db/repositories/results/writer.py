"""The bulk-write engine: saves of one or many documents with a fixed number of
statements (the dialect seam does the inserts), and deletes.

The rows a save writes are built here as driver-ready tuples, converted by the
columns' own bind processors; re-derivation (:mod:`karr_db.derive`) uses the same
columns and :func:`hardware_row`, so it writes exactly the rows a fresh save would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select, union_all, update
from sqlalchemy.exc import IntegrityError

from karr_db.dialects import for_connection
from karr_db.documents import ValidatedDocument, load_document
from karr_db.engine import translated
from karr_db.errors import (
    FieldError,
    NotFoundError,
    StillReferencedError,
    ValidationError,
)
from karr_db.models import QuickTest, Run, RunFingerprint
from karr_db.models.types import dumps_document, parse_timestamp, utcnow
from karr_db.repositories import leaderboard_aggregate
from karr_db.repositories.events import EventsRepository, EventType
from karr_db.repositories.results import shapes
from karr_db.repositories.results.base import ResultsBase
from karr_db.repositories.results.dto import RunSummary, SaveResult
from karr_db.repositories.results.statements import (
    SUMMARY_BY_CONTENT,
    summary_select,
)


def bind_processor(column: Any, dialect: Any) -> Any:
    """The column type's bind conversion for ``dialect`` (identity when it has none)."""
    process = column.type.bind_processor(dialect)
    return process if process is not None else _identity


def _identity(value: Any) -> Any:
    return value


RUN_INSERT_COLUMNS = (
    "id",
    "model",
    "engine",
    "suite_name",
    "timestamp",
    "passed",
    "total_benchmarks",
    "passed_count",
    "failed_count",
    "total_time_seconds",
    "kitt_version",
    "raw_json",
    "created_at",
)
HARDWARE_INSERT_COLUMNS = (
    "run_id",
    "gpu_model",
    "gpu_vram_gb",
    "gpu_count",
    "cpu_model",
    "cpu_cores",
    "ram_gb",
    "environment_type",
    "fingerprint",
)
BENCHMARK_INSERT_COLUMNS = (
    "run_id",
    "test_name",
    "test_version",
    "run_number",
    "passed",
    "timestamp",
    "created_at",
)
METRIC_INSERT_COLUMNS = ("benchmark_id", "metric_name", "metric_value")


#: PostgreSQL inserts of several documents at once (imports) use COPY, which
#: loads an import batch's metric rows faster than ``INSERT .. SELECT FROM
#: unnest``; for one run's rows the two are alike, and a single save keeps plain
#: INSERTs, visible to statement-level instrumentation.
COPY_FROM_DOCUMENTS = 2


def _whole(value: int | float | None) -> int | None:
    return None if value is None else round(value)


def hardware_row(doc: ValidatedDocument) -> tuple[Any, ...] | None:
    """The ``hardware`` row (in :data:`HARDWARE_INSERT_COLUMNS` order) a save of ``doc``
    writes, or ``None`` when it has no ``system_info``; re-derivation uses it too."""
    info = doc.model.system_info
    if info is None:
        return None
    gpu, cpu = info.gpu, info.cpu
    return (
        doc.run_id,
        gpu.model if gpu else None,
        _whole(gpu.vram_gb) if gpu else None,
        gpu.count if gpu else None,
        cpu if isinstance(cpu, str) else (cpu.model if cpu else None),
        None if cpu is None or isinstance(cpu, str) else cpu.cores,
        _whole(info.ram_gb),
        info.environment_type,
        info.fingerprint,
    )


class ResultsWriter(ResultsBase):
    """The writes of :class:`~karr_db.repositories.results.ResultsRepository`."""

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
        found: dict[str, RunSummary] = {}
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
                    found[row._fingerprint] = summary
                by_id[row.id] = summary
            for fingerprint in chunk:
                if fingerprint not in found and fingerprint in by_id:
                    found[fingerprint] = by_id[fingerprint]
        return found

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
        metric_rows = [
            (benchmark_id, f.name, f.value if nan is None or f.value == f.value else nan)
            for benchmark_id, flat in zip(ids, flats, strict=True)
            for f in flat
        ]
        bulk_insert(connection, "metrics", METRIC_INSERT_COLUMNS, metric_rows, copy=copy)

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
