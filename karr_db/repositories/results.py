"""KITT result documents: save, read, query, aggregate, compare and delete runs.

Every query is one SQL statement (full detail of a run is three), filters and
order fields are whitelisted, and a save costs a handful of statements however
many metrics the document has (benchmarks inserted with one
``INSERT .. RETURNING``, metrics with one executemany).

NaN semantics of aggregates: NaN and the infinities are legal metric values
and round-trip, but the leaderboard leaves them out of ``count``, ``avg``,
``min``, ``max`` and ``median`` on both dialects (PostgreSQL would otherwise
let NaN win every ``max`` and SQLite would order its ``'NaN'`` text after all
numbers); each aggregate row counts them in ``non_finite`` instead. The median
is computed in the same statement with window functions, so both dialects
support it and agree with PostgreSQL's ``percentile_cont(0.5)``.

``metric_value`` keeps every value including NaN and the infinities, but not
the sign of zero (SQLite's REAL folds ``-0.0`` into ``0``); the document in
``raw_json`` keeps it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from karr_db.documents import ValidatedDocument, load_document
from karr_db.engine import storage_error
from karr_db.errors import (
    FieldError,
    InvalidQueryError,
    NotFoundError,
    StillReferencedError,
    ValidationError,
)
from karr_db.limits import text_problem
from karr_db.models import Benchmark, Hardware, Metric, QuickTest, Run, RunFingerprint
from karr_db.models.types import SQLITE_NAN, Double, dumps_document, parse_timestamp, utcnow
from karr_db.repositories import leaderboard_aggregate, results_lookup
from karr_db.repositories._validate import checked
from karr_db.repositories.base import Page, arrays, next_sqlite_id, unnest_arrays
from karr_db.repositories.events import EventsRepository
from karr_db.repositories.results_dto import (
    AggregateRow,
    BenchmarkDetail,
    Comparison,
    ComparisonRow,
    GroupCounts,
    HardwareInfo,
    MetricPoint,
    OutcomeCounts,
    RunDetail,
    RunStats,
    RunSummary,
    SaveResult,
)
from karr_db.repositories.results_page import HEADLINE, RUN_COLUMNS, page_statement

__all__ = [
    "GROUP_FIELDS",
    "LEADERBOARD_ORDER_FIELDS",
    "ORDER_FIELDS",
    "ResultsRepository",
    "RunFilter",
]

MAX_LIMIT = 1000


class RunFilter(BaseModel):
    """The filters runs can be selected by; any other key is an error.

    ``since`` is inclusive and ``until`` exclusive; naive datetimes are UTC.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    engine: str | None = None
    suite_name: str | None = Field(
        default=None, validation_alias=AliasChoices("suite_name", "suite")
    )
    passed: bool | None = None
    kitt_version: str | None = None
    gpu_model: str | None = None
    environment_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        try:
            return parse_timestamp(value)
        except OverflowError:
            raise ValueError("falls outside the years 1-9999 once converted to UTC") from None

    @field_validator(
        "model", "engine", "suite_name", "kitt_version", "gpu_model", "environment_type"
    )
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        # Compared with stored text: a value no dialect can store matches nothing,
        # but PostgreSQL would refuse the statement and SQLite's driver the encoding.
        problem = None if value is None else text_problem(value)
        if problem:
            raise ValueError(problem)
        return value


#: Order fields of :meth:`ResultsRepository.list_runs`.
ORDER_FIELDS: dict[str, Any] = {
    "timestamp": Run.timestamp,
    "created_at": Run.created_at,
    "model": Run.model,
    "engine": Run.engine,
    "suite_name": Run.suite_name,
    "kitt_version": Run.kitt_version,
    "total_time_seconds": Run.total_time_seconds,
}
_DATETIME_ORDER = frozenset({"timestamp", "created_at"})

#: What a leaderboard can group by.
GROUP_FIELDS: dict[str, Any] = {
    "model": Run.model,
    "engine": Run.engine,
    "suite_name": Run.suite_name,
    "kitt_version": Run.kitt_version,
    "gpu_model": Hardware.gpu_model,
    "environment_type": Hardware.environment_type,
}
#: What a leaderboard can be ordered by (besides its group fields).
LEADERBOARD_ORDER_FIELDS = ("avg", "min", "max", "median", "count")


def _parse_filter(filters: RunFilter | Mapping[str, Any] | None) -> RunFilter:
    if filters is None:
        return RunFilter()
    if isinstance(filters, RunFilter):
        return filters
    if not isinstance(filters, Mapping):
        raise InvalidQueryError(
            f"invalid run filter: expected a mapping of filters, got {type(filters).__name__}"
        )
    try:
        return RunFilter.model_validate(dict(filters))
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: "
            + ("unknown filter" if err["type"] == "extra_forbidden" else err["msg"])
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise InvalidQueryError(f"invalid run filter: {problems}") from None


def _first_hardware_id() -> Any:
    """The run's first hardware row: a run shows one hardware headline, never duplicates."""
    return (
        select(func.min(Hardware.id))
        .where(Hardware.run_id == Run.id)
        .correlate(Run)
        .scalar_subquery()
    )


_S = TypeVar("_S", bound="Select[*tuple[Any, ...]]")


def _with_hardware(stmt: _S, needed: bool = True) -> _S:
    """Join each run's first hardware row, when ``needed``.

    The join costs a correlated ``min(id)`` lookup per run: on 20,000 runs it
    was most of a ``count`` and of a metric history, so statements that show
    no hardware column and filter on none leave it out.
    """
    if not needed:
        return stmt
    return stmt.outerjoin(
        Hardware, and_(Hardware.run_id == Run.id, Hardware.id == _first_hardware_id())
    )


def _filters_hardware(f: RunFilter) -> bool:
    return f.gpu_model is not None or f.environment_type is not None


def _conditions(f: RunFilter) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    equal: list[tuple[Any, Any]] = [
        (Run.model, f.model),
        (Run.engine, f.engine),
        (Run.suite_name, f.suite_name),
        (Run.passed, f.passed),
        (Run.kitt_version, f.kitt_version),
        (Hardware.gpu_model, f.gpu_model),
        (Hardware.environment_type, f.environment_type),
    ]
    conds.extend(column == value for column, value in equal if value is not None)
    if f.since is not None:
        conds.append(Run.timestamp >= f.since)
    if f.until is not None:
        conds.append(Run.timestamp < f.until)
    return conds


#: A run summary's columns, in :class:`RunSummary`'s field order (the page's own).
_SUMMARY_COLUMNS = (*RUN_COLUMNS, *HEADLINE)


def _summary_select() -> Select[*tuple[Any, ...]]:
    return _with_hardware(select(*_SUMMARY_COLUMNS).select_from(Run))


_SUMMARY_BY_ID = _summary_select().where(Run.id == bindparam("run_id"))
#: The run a content belongs to: the owner its fingerprint names (an adopted
#: run keeps its legacy id), else the run whose id is the fingerprint (a run
#: whose fingerprint row no writer made, e.g. one of an older release).
_SUMMARY_BY_CONTENT = _summary_select().where(
    Run.id
    == func.coalesce(
        select(RunFingerprint.run_id)
        .where(RunFingerprint.fingerprint == bindparam("fingerprint"))
        .scalar_subquery(),
        bindparam("fingerprint"),
    )
)


def _summary(row: Any) -> RunSummary:
    """A summary from a row of :func:`_summary_select`, typed by the database already:
    building it without validation is ~10x cheaper, which a page of 50 shows. The
    columns come in the fields' order (``_SUMMARY_COLUMNS``, ``results_page``), so the
    row is zipped as a tuple instead of looked up by name per field."""
    return RunSummary.model_construct(**dict(zip(_SUMMARY_FIELDS, row, strict=True)))


_SUMMARY_FIELDS = tuple(RunSummary.model_fields)


_HARDWARE_FIELDS = tuple(HardwareInfo.model_fields)
_DETAIL_RUN = _with_hardware(
    select(
        *_SUMMARY_COLUMNS,
        Hardware.id.label("hw_id"),
        *(getattr(Hardware, f).label(f"hw_{f}") for f in _HARDWARE_FIELDS),
    ).select_from(Run)
).where(Run.id == bindparam("run_id"))
_DETAIL_BENCHMARKS = (
    select(
        Benchmark.id,
        Benchmark.test_name,
        Benchmark.test_version,
        Benchmark.run_number,
        Benchmark.passed,
        Benchmark.timestamp,
    )
    .where(Benchmark.run_id == bindparam("run_id"))
    .order_by(Benchmark.id)
)
_DETAIL_METRICS = (
    select(Metric.benchmark_id, Metric.metric_name, Metric.metric_value)
    .join(Benchmark, Benchmark.id == Metric.benchmark_id)
    .where(Benchmark.run_id == bindparam("run_id"))
    .order_by(Metric.benchmark_id, Metric.id)
)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidQueryError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")


# --- keyset cursors -----------------------------------------------------------
#
# A cursor is base64url of a small JSON object: the order field and direction
# it was made for, the last row's order value (as text, ``None`` for NULL) and
# its id. Rows are ordered by (value, id) with NULLs last in both directions,
# so the page after a cursor is "rows strictly after that pair", which stays
# right however many runs are inserted meanwhile.


def _encode_cursor(order_by: str, descending: bool, value: Any, run_id: str) -> str:
    if isinstance(value, datetime):
        text: str | None = value.isoformat()
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = None if value is None else str(value)
    payload = {"o": order_by, "d": descending, "v": text, "id": run_id}
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, order_by: str, descending: bool) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        text, run_id = payload["v"], payload["id"]
        if not isinstance(run_id, str) or not (text is None or isinstance(text, str)):
            raise ValueError("bad cursor fields")
        if payload["o"] != order_by or payload["d"] is not descending:
            raise InvalidQueryError(
                f"cursor was made for order {payload['o']!r} "
                f"({'descending' if payload['d'] else 'ascending'}); "
                "pass the same order_by and descending as the first page"
            )
        if text is None:
            value: Any = None
        elif order_by in _DATETIME_ORDER:
            value = parse_timestamp(text)
        elif order_by == "total_time_seconds":
            value = float(text)
        else:
            value = text
    except InvalidQueryError:
        raise
    except (ValueError, KeyError, TypeError, binascii.Error, OverflowError, RecursionError):
        # Overflow: a forged timestamp at the calendar's edge; recursion: forged nesting.
        raise InvalidQueryError("malformed cursor") from None
    return value, run_id


def _after(column: Any, descending: bool, value: Any, run_id: str) -> ColumnElement[bool]:
    """Rows strictly after (value, run_id) in the (value NULLS LAST, id) order."""
    id_after = Run.id < run_id if descending else Run.id > run_id
    if value is None:
        return and_(column.is_(None), id_after)
    beyond = column < value if descending else column > value
    return or_(column.is_(None), beyond, and_(column == value, id_after))


# A metric history's cursor: the last point's run time, run id, benchmark id and
# metric id, the four keys of its order.


def _encode_point(
    timestamp: datetime | None, run_id: str, benchmark_id: int, metric_id: int
) -> str:
    payload = [timestamp.isoformat() if timestamp else None, run_id, benchmark_id, metric_id]
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_point(cursor: str) -> tuple[datetime | None, str, int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        text, run_id, benchmark_id, metric_id = json.loads(raw)
        ids = (benchmark_id, metric_id)
        if (
            not isinstance(run_id, str)
            or not (text is None or isinstance(text, str))
            or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < 2**63 for i in ids)
        ):
            raise ValueError("bad cursor fields")
        return parse_timestamp(text), run_id, benchmark_id, metric_id
    except (ValueError, TypeError, binascii.Error, OverflowError, RecursionError):
        raise InvalidQueryError("malformed cursor") from None


def _after_point(
    timestamp: datetime | None, run_id: str, benchmark_id: int, metric_id: int
) -> ColumnElement[bool]:
    """Points strictly after the given one in (time NULLS LAST, run, benchmark, metric) order."""
    later_in_time = or_(
        Run.id > run_id,
        and_(
            Run.id == run_id,
            or_(
                Benchmark.id > benchmark_id,
                and_(Benchmark.id == benchmark_id, Metric.id > metric_id),
            ),
        ),
    )
    if timestamp is None:
        return and_(Run.timestamp.is_(None), later_in_time)
    return or_(
        Run.timestamp > timestamp,
        Run.timestamp.is_(None),
        and_(Run.timestamp == timestamp, later_in_time),
    )


# --- the repository -----------------------------------------------------------


@contextmanager
def _translated(operation: str) -> Iterator[None]:
    """Driver errors leave the repository as :class:`StorageError`, never raw."""
    try:
        yield
    except DBAPIError as exc:
        raise storage_error(operation, exc) from exc


def _processor(column: Any, dialect: Any) -> Any:
    """The column type's bind conversion for ``dialect`` (identity when it has none)."""
    process = column.type.bind_processor(dialect)
    return process if process is not None else _identity


def _identity(value: Any) -> Any:
    return value


_RUN_COLUMNS = (
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
_HARDWARE_COLUMNS = (
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
_BENCHMARK_COLUMNS = (
    "run_id",
    "test_name",
    "test_version",
    "run_number",
    "passed",
    "timestamp",
    "created_at",
)
_METRIC_COLUMNS = ("benchmark_id", "metric_name", "metric_value")


#: PostgreSQL inserts of several documents at once (imports) use COPY: for an
#: import batch of 200 runs (~40,000 metric rows) ``INSERT .. SELECT FROM
#: unnest`` took about twice as long as COPY; for one run's rows the two are
#: alike, and a single save keeps plain INSERTs, visible to statement-level
#: instrumentation.
COPY_FROM_DOCUMENTS = 2


def _copy(connection: Connection, statement: str, rows: list[tuple[Any, ...]]) -> None:
    """COPY rows in through psycopg; its errors leave as SQLAlchemy's, like any statement's."""
    driver = connection.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except connection.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            statement, None, exc, connection.dialect.loaded_dbapi.Error
        ) from exc


def _bulk_insert(
    connection: Connection,
    table: str,
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    *,
    copy: bool = False,
) -> None:
    """Insert driver-ready rows in one statement: executemany on SQLite, unnest on PostgreSQL.

    Values must already be converted for the dialect (see :func:`_processor`);
    JSON columns take JSON text, which PostgreSQL casts element by element.
    """
    if not rows:
        return
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql" and copy:
        _copy(connection, f"COPY {table} ({names}) FROM STDIN", rows)
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            f"INSERT INTO {table} ({names}) SELECT * FROM {unnest_arrays(table, columns)}",
            arrays(rows),
        )
    else:
        marks = ", ".join("?" * len(columns))
        connection.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)


def _whole(value: int | float | None) -> int | None:
    return None if value is None else round(value)


def hardware_row(doc: ValidatedDocument) -> tuple[Any, ...] | None:
    """The ``hardware`` row (in :data:`_HARDWARE_COLUMNS` order) a save of ``doc``
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


def insert_benchmark_rows(connection: Connection, rows: list[tuple[Any, ...]]) -> list[int]:
    """Insert benchmark rows (:data:`_BENCHMARK_COLUMNS` order, driver-ready) in one
    statement (two on SQLite, which must hold the write lock); their ids in row order."""
    if not rows:
        return []
    if connection.dialect.name == "postgresql":
        # Ids are drawn from the column's sequence in a materialised CTE and
        # matched to the rows by position, so the returned ids follow
        # ``rows`` without relying on the order rows are inserted in.
        columns = ", ".join(_BENCHMARK_COLUMNS)
        result = connection.exec_driver_sql(
            f"WITH input AS (SELECT * FROM {unnest_arrays('benchmarks', _BENCHMARK_COLUMNS)} "
            f"WITH ORDINALITY AS t({columns}, n)), "
            "numbered AS MATERIALIZED (SELECT n, "
            "nextval(pg_get_serial_sequence('benchmarks', 'id')) AS id FROM input), "
            f"inserted AS (INSERT INTO benchmarks (id, {columns}) "
            f"SELECT numbered.id, {columns} FROM input JOIN numbered USING (n)) "
            "SELECT id FROM numbered ORDER BY n",
            arrays(rows),
        )
        return [row[0] for row in result]
    # SQLite would need one ordered RETURNING per row. This transaction
    # already holds the write lock (it inserted the runs), so nobody else
    # can take ids meanwhile: number the rows from the AUTOINCREMENT
    # counter (or the highest id, whichever is larger) and insert them
    # with explicit ids, which advances the counter.
    first = next_sqlite_id(connection, "benchmarks")
    ids = list(range(first, first + len(rows)))
    _bulk_insert(
        connection,
        "benchmarks",
        ("id", *_BENCHMARK_COLUMNS),
        [(i, *row) for i, row in zip(ids, rows, strict=True)],
    )
    return ids


@checked
class ResultsRepository:
    """Runs and their benchmarks, metrics and hardware; works in the caller's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # --- writes -------------------------------------------------------------

    def _lock(self) -> None:
        """Every write takes the event-log lock before its first read or row, like
        the operations repositories (see :meth:`EventsRepository.lock_log`): one
        lock order, so no two repository transactions can deadlock, and on SQLite
        the write lock before the existence check, so the upgrade cannot fail."""
        EventsRepository(self.session).lock_log()

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
        with _translated("saving a run"):
            self._lock()
            existing = self._find_content(doc.run_id)
            if existing is not None:
                return SaveResult(run=existing, created=False)
            try:
                with self.session.begin_nested():
                    (summary,) = self._insert_many([doc])
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
        with _translated("saving runs"):
            self._lock()
            stored = self._summaries([d.run_id for d in docs])
            fresh: dict[str, ValidatedDocument] = {}
            for doc in docs:
                if doc.run_id not in stored:
                    fresh.setdefault(doc.run_id, doc)
            created: dict[str, RunSummary] = {}
            if fresh:
                try:
                    with self.session.begin_nested():
                        summaries = self._insert_many(list(fresh.values()))
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
        """The stored run holding this content (see :data:`_SUMMARY_BY_CONTENT`), if any."""
        row = (
            self.session.connection()
            .execute(_SUMMARY_BY_CONTENT, {"fingerprint": fingerprint})
            .first()
        )
        return None if row is None else _summary(row)

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
                _summary_select()
                .add_columns(RunFingerprint.fingerprint.label("_fingerprint"))
                .outerjoin(RunFingerprint, RunFingerprint.run_id == Run.id)
            )
            # Two branches, not one OR: PostgreSQL answers "id IN (subquery) OR id IN
            # (list)" with a scan of every run; each branch alone uses an index.
            stmt = union_all(base.where(Run.id.in_(owners)), base.where(Run.id.in_(chunk)))
            by_id: dict[str, RunSummary] = {}
            for row in self.session.execute(stmt):
                summary = _summary(tuple(row)[:-1])  # the last column is the fingerprint
                if row._fingerprint is not None:
                    found[row._fingerprint] = summary
                by_id[row.id] = summary
            for fingerprint in chunk:
                if fingerprint not in found and fingerprint in by_id:
                    found[fingerprint] = by_id[fingerprint]
        return found

    def _insert_many(self, docs: Sequence[ValidatedDocument]) -> list[RunSummary]:
        """Insert validated documents with a fixed number of statements, whatever their number.

        Rows go to the driver as plain tuples (``executemany`` on SQLite, one
        set-based ``INSERT .. SELECT FROM unnest(..)`` per table on
        PostgreSQL), converted by the columns' own bind processors. The ORM's
        bulk insert spent ~20 µs of Python per metric row building parameter
        dictionaries, and psycopg's ``executemany`` runs one INSERT per row on
        the server; see docs/performance.md.
        """
        connection = self.session.connection()
        dialect = connection.dialect
        now = utcnow()
        runs, hardware, summaries = [], [], []
        for doc in docs:
            m = doc.model
            run = RunSummary.model_construct(
                id=doc.run_id,
                model=m.model,
                engine=m.engine,
                suite_name=m.suite_name,
                timestamp=m.run_timestamp,
                passed=m.passed,
                total_benchmarks=m.total_benchmarks,
                passed_count=m.passed_count,
                failed_count=m.failed_count,
                total_time_seconds=m.total_time_seconds,
                kitt_version=m.kitt_version,
                created_at=now,
                gpu_model=None,
                gpu_count=None,
                environment_type=None,
            )
            row = hardware_row(doc)
            if row is not None:
                hardware.append(row)
                run = run.model_copy(
                    update={"gpu_model": row[1], "gpu_count": row[3], "environment_type": row[7]}
                )
            summaries.append(run)
            runs.append(doc)

        stamp = _processor(Run.__table__.c.timestamp, dialect)
        flag = _processor(Run.__table__.c.passed, dialect)
        number = _processor(Run.__table__.c.total_time_seconds, dialect)
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
        _bulk_insert(connection, "runs", _RUN_COLUMNS, run_rows, copy=copy)
        # The content's owner: a concurrent save of the same content (or
        # re-derivation giving it to an adopted run) conflicts here.
        _bulk_insert(
            connection,
            "run_fingerprints",
            ("fingerprint", "run_id"),
            [(s.id, s.id) for s in summaries],
            copy=copy,
        )
        _bulk_insert(connection, "hardware", _HARDWARE_COLUMNS, hardware, copy=copy)

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
        ids = self._insert_benchmarks(bench_rows)
        flats = (flat for doc in docs for flat in doc.metrics)
        # Flattened values are floats already; the only conversion left is
        # SQLite's NaN text (see Double). Inline: this runs ~200 times a run.
        nan = None if dialect.name == "postgresql" else SQLITE_NAN
        metric_rows = [
            (benchmark_id, f.name, f.value if nan is None or f.value == f.value else nan)
            for benchmark_id, flat in zip(ids, flats, strict=True)
            for f in flat
        ]
        _bulk_insert(connection, "metrics", _METRIC_COLUMNS, metric_rows, copy=copy)

        EventsRepository(self.session).append_many(
            (
                "run.saved",
                s.id,
                {"model": s.model, "engine": s.engine, "suite_name": s.suite_name},
            )
            for s in summaries
        )
        # Beyond the reference: the leaderboard aggregate follows every save (one statement).
        leaderboard_aggregate.add_runs(
            self.session, [s.id for s in summaries], log_locked=bool(summaries)
        )
        return summaries

    def _insert_benchmarks(self, rows: list[tuple[Any, ...]]) -> list[int]:
        """Insert benchmark rows in one statement (two on SQLite); their ids in row order."""
        return insert_benchmark_rows(self.session.connection(), rows)

    def delete(self, run_id: str, *, detach: bool = False) -> None:
        """Delete a run; its benchmarks, metrics and hardware go by ON DELETE CASCADE.

        A run that quick tests point to is refused with
        :class:`StillReferencedError` naming them, unless ``detach`` is true,
        which clears their ``result_id`` in the same transaction.
        """
        with _translated("deleting a run"):
            self._lock()
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
                    EventsRepository(self.session).append("run.deleted", source_id=run_id)
            except IntegrityError:
                # A quick test started pointing at the run after the check above.
                raise StillReferencedError("run", run_id, ["a quick test"]) from None

    # --- reads --------------------------------------------------------------

    def get_summary(self, run_id: str, *, missing_ok: bool = False) -> RunSummary | None:
        """One run's columns and hardware headline (one statement)."""
        with _translated("reading a run"):
            # A prebuilt Core statement on the session's connection: every save
            # starts with this lookup, and building and ORM-compiling the
            # statement anew cost more than running it (~1 ms of Python).
            row = self.session.connection().execute(_SUMMARY_BY_ID, {"run_id": run_id}).first()
        if row is None:
            if missing_ok:
                return None
            raise NotFoundError("run", run_id)
        return _summary(row)

    def get(self, run_id: str) -> RunDetail:
        """A run in full: three statements (run + hardware, benchmarks, metrics).

        Plain column selects, not ORM entities: loading ~200 Metric objects
        into the identity map and validating the DTOs cost ~20x the queries.
        """
        connection = self.session.connection()
        with _translated("reading a run"):
            run = connection.execute(_DETAIL_RUN, {"run_id": run_id}).first()
            if run is None:
                raise NotFoundError("run", run_id)
            benchmarks = connection.execute(_DETAIL_BENCHMARKS, {"run_id": run_id}).all()
            metrics = connection.execute(_DETAIL_METRICS, {"run_id": run_id}).all()
        by_benchmark: dict[int, dict[str, float | None]] = {b.id: {} for b in benchmarks}
        for benchmark_id, name, value in metrics:
            by_benchmark[int(benchmark_id or 0)][name or ""] = value  # joined: never NULL
        fields = run._mapping
        hardware = (
            HardwareInfo.model_construct(**{f: fields[f"hw_{f}"] for f in _HARDWARE_FIELDS})
            if fields["hw_id"] is not None
            else None
        )
        return RunDetail.model_construct(
            **{f: fields[f] for f in _SUMMARY_FIELDS},
            benchmarks=[
                BenchmarkDetail.model_construct(
                    id=b.id,
                    test_name=b.test_name,
                    test_version=b.test_version,
                    run_number=b.run_number,
                    passed=b.passed,
                    timestamp=b.timestamp,
                    metrics=by_benchmark[b.id],
                )
                for b in benchmarks
            ],
            hardware=hardware,
        )

    def get_document(self, run_id: str) -> dict[str, Any]:
        """The stored document, equal to the one saved (NaN and infinities as floats)."""
        with _translated("reading a run"):
            row = self.session.execute(select(Run.raw_json).where(Run.id == run_id)).first()
        if row is None:
            raise NotFoundError("run", run_id)
        document: dict[str, Any] = row[0]
        return document

    def iter_documents(
        self, filters: RunFilter | Mapping[str, Any] | None = None, *, batch_size: int = 100
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(run id, document) of every matching run, streamed in batches.

        Uses ``yield_per`` (a server-side cursor on PostgreSQL), so memory does
        not grow with the number of runs; the session must stay open while
        iterating.
        """
        f = _parse_filter(filters)
        if not 1 <= batch_size <= MAX_LIMIT:
            raise InvalidQueryError(
                f"batch_size must be between 1 and {MAX_LIMIT}, got {batch_size}"
            )
        stmt = (
            _with_hardware(select(Run.id, Run.raw_json).select_from(Run), _filters_hardware(f))
            .where(*_conditions(f))
            .order_by(Run.id)
            .execution_options(yield_per=batch_size)
        )
        with _translated("exporting runs"):
            yield from ((row[0], row[1]) for row in self.session.execute(stmt))

    def count(self, filters: RunFilter | Mapping[str, Any] | None = None) -> int:
        """How many runs match (one statement)."""
        f = _parse_filter(filters)
        stmt = _with_hardware(
            # count(*), not count(id): the id is a non-null key, and without it the
            # count is answered from an index alone (idx_runs_passed, say).
            select(func.count()).select_from(Run),
            _filters_hardware(f),
        ).where(*_conditions(f))
        with _translated("counting runs"):
            return int(self.session.execute(stmt).scalar_one())

    def stats(self, filters: RunFilter | Mapping[str, Any] | None = None) -> RunStats:
        """Totals by outcome, overall and by engine, model and suite, from one grouped
        statement (a row per engine, model, suite and outcome, folded here)."""
        f = _parse_filter(filters)
        keys = (Run.engine, Run.model, Run.suite_name, Run.passed)
        stmt = (
            _with_hardware(select(*keys, func.count()).select_from(Run), _filters_hardware(f))
            .where(*_conditions(f))
            .group_by(*keys)
        )
        with _translated("counting runs"):
            rows = self.session.execute(stmt).all()
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

    def list_runs(
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
        f = _parse_filter(filters)
        if order_by not in ORDER_FIELDS:
            raise InvalidQueryError(
                f"unknown order field {order_by!r}; use one of {', '.join(ORDER_FIELDS)}"
            )
        _check_limit(limit)
        if cursor is not None and offset is not None:
            raise InvalidQueryError("pass either a cursor or an offset, not both")
        if offset is not None and offset < 0:
            raise InvalidQueryError(f"offset must not be negative, got {offset}")
        column = ORDER_FIELDS[order_by]
        conds = _conditions(f)
        if cursor is not None:
            value, last_id = _decode_cursor(cursor, order_by, descending)
            conds.append(_after(column, descending, value, last_id))
        connection = self.session.connection()
        stmt = page_statement(
            conds,
            column,
            descending,
            limit + 1,
            offset or None,
            hardware_filtered=_filters_hardware(f),
            lateral=connection.dialect.name == "postgresql",
        )
        with _translated("listing runs"):
            rows = connection.execute(stmt).all()
        items = [_summary(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = _encode_cursor(order_by, descending, last._mapping[order_by], last.id)
        return Page[RunSummary](items=items, next_cursor=next_cursor)

    # --- analysis -----------------------------------------------------------

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
        filter needs the rows (``since``, ``until``, ``passed``), the answer
        comes from the leaderboard aggregate (beyond the reference, see
        :mod:`karr_db.repositories.leaderboard_aggregate`), whose cost does not
        grow with the history.
        """
        f = _parse_filter(filters)
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
            _check_limit(limit)
        if not median:
            if order_by == "median":
                raise InvalidQueryError("order by median needs median=True")
            chosen = f.model_dump(exclude_none=True)
            if set(chosen) <= leaderboard_aggregate.AGGREGATE_FILTERS:
                with _translated("computing a leaderboard"):
                    return leaderboard_aggregate.leaderboard(
                        self.session,
                        metric,
                        group_by=group_by,
                        per_test=per_test,
                        test_name=test_name,
                        filters=chosen,
                        order_by=order_by,
                        descending=descending,
                        limit=limit,
                    )

        value = Metric.metric_value
        finite = and_(value < literal(math.inf, Double()), value > literal(-math.inf, Double()))
        finite_value = type_coerce(case((finite, value), else_=None), Double())
        keys: list[Any] = [GROUP_FIELDS[g].label(f"g_{g}") for g in group_by]
        if per_test:
            keys.append(Benchmark.test_name.label("g__test"))
        partition = [k.element for k in keys]
        conds = [Metric.metric_name == metric, *_conditions(f)]
        if test_name is not None:
            conds.append(Benchmark.test_name == test_name)
        # PostgreSQL has percentile_cont, which gives the same median without
        # the two window passes (they made the leaderboard ~2x slower there);
        # SQLite needs the row numbers.
        pg = self.session.get_bind().dialect.name == "postgresql"
        ranks = (
            []
            if pg
            else [
                func.row_number()
                .over(
                    partition_by=[*partition, case((finite, 1), else_=0)],
                    order_by=finite_value,
                )
                .label("rn"),
                func.count(finite_value).over(partition_by=partition or None).label("n"),
            ]
        )
        inner = (
            _with_hardware(
                select(*keys, finite_value.label("v"), value.label("raw"), *ranks)
                .select_from(Metric)
                .join(Benchmark, Benchmark.id == Metric.benchmark_id)
                .join(Run, Run.id == Benchmark.run_id),
                _filters_hardware(f)
                or any(GROUP_FIELDS[g].table is Hardware.__table__ for g in group_by),
            )
            .where(*conds)
            .subquery()
        )
        v = type_coerce(inner.c.v, Double())
        median_of: ColumnElement[Any]
        if pg:
            median_of = func.percentile_cont(0.5).within_group(inner.c.v)
        else:
            middle = and_(
                inner.c.v.is_not(None),
                or_(inner.c.rn == (inner.c.n + 1) // 2, inner.c.rn == (inner.c.n + 2) // 2),
            )
            median_of = func.avg(case((middle, v), else_=None))
        group_columns = [inner.c[k.name] for k in keys]
        aggregates: dict[str, Any] = {
            "count": func.count(inner.c.v),
            "avg": type_coerce(func.avg(v), Double()),
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
        with _translated("computing a leaderboard"):
            rows = self.session.execute(stmt).all()
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
        limit: int = MAX_LIMIT,
        cursor: str | None = None,
    ) -> Page[MetricPoint]:
        """One metric over time, oldest run first, one page at a time (one statement).

        Page on with ``cursor=page.next_cursor`` (keyset on the run's time, run,
        benchmark and metric row), so a history of any length is read in pages
        of at most :data:`MAX_LIMIT` points instead of all at once.
        """
        f = _parse_filter(filters)
        if model is not None or engine is not None:
            f = f.model_copy(
                update={
                    "model": model if model is not None else f.model,
                    "engine": engine if engine is not None else f.engine,
                }
            )
        _check_limit(limit)
        conds = [Metric.metric_name == metric, *_conditions(f)]
        if test_name is not None:
            conds.append(Benchmark.test_name == test_name)
        if cursor is not None:
            conds.append(_after_point(*_decode_point(cursor)))
        stmt = (
            _with_hardware(
                select(
                    Run.id.label("run_id"),
                    Run.timestamp,
                    Benchmark.test_name,
                    Benchmark.run_number,
                    Metric.metric_value.label("value"),
                    Benchmark.id.label("benchmark_id"),
                    Metric.id.label("metric_id"),
                )
                .select_from(Metric)
                .join(Benchmark, Benchmark.id == Metric.benchmark_id)
                .join(Run, Run.id == Benchmark.run_id),
                _filters_hardware(f),
            )
            .where(*conds)
            .order_by(Run.timestamp.asc().nulls_last(), Run.id, Benchmark.id, Metric.id)
            .limit(limit + 1)
        )
        with _translated("reading a metric history"):
            rows = self.session.execute(stmt).all()
        # Columns come typed from the database: no per-row validation needed.
        items = [
            MetricPoint.model_construct(
                run_id=r.run_id,
                timestamp=r.timestamp,
                test_name=r.test_name,
                run_number=r.run_number,
                value=r.value,
            )
            for r in rows[:limit]
        ]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = _encode_point(
                last.timestamp, last.run_id, last.benchmark_id, last.metric_id
            )
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
        with _translated("comparing runs"):
            rows = self.session.execute(stmt).all()
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

    # --- ids, metric names, tidy export (karr_db.repositories.results_lookup) ----

    def resolve_id(self, prefix: str) -> str:
        """The full id of the one run whose id starts with ``prefix`` (git-style);
        :class:`AmbiguousIdError` lists the candidates when several do."""
        with _translated("resolving a run id"):
            return results_lookup.resolve_id(self.session, prefix)

    def short_ids(
        self, run_ids: Sequence[str], *, min_length: int = results_lookup.MIN_SHORT_ID
    ) -> dict[str, str]:
        """The shortest unique prefix of each id (at least ``min_length`` characters)."""
        with _translated("shortening run ids"):
            return results_lookup.short_ids(self.session, run_ids, min_length=min_length)

    def metric_names(
        self, *, test_name: str | None = None, per_test: bool = True
    ) -> list[results_lookup.MetricName]:
        """Stored metric names with their value counts, per test unless ``per_test=False``."""
        with _translated("listing metric names"):
            return results_lookup.metric_names(self.session, test_name=test_name, per_test=per_test)

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
        conditions = _conditions(_parse_filter(filters))
        if run_ids is not None:
            conditions.append(Run.id.in_(list(run_ids)))
        with _translated("exporting metric values"):
            yield from results_lookup.iter_metric_values(
                self.session, conditions, batch_size=batch_size
            )
