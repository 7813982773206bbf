"""Re-deriving the rows a save derives from a document: benchmarks, metrics, hardware, fingerprints.

A save of a result document writes the run and, from the document, its
benchmark rows, the flattened metrics (nested objects under dotted names,
:func:`karr_db.documents.flatten_metrics`), its hardware row and its content
fingerprint. The earlier system kept only top-level numeric metrics (so
``ttft_ms.p50`` lived in ``raw_json`` alone) and gave runs random ids; its
runs, once adopted, were missing from leaderboards and histories and from
deduplication. Here every stored run gets what a fresh save of its
``raw_json`` would produce, by the same code (:func:`load_document`,
:func:`~karr_db.repositories.results.rows.hardware_row`).

Rules, decided here where the issue was silent:

* **Additive only.** No row is deleted, renumbered or changed: legacy rows
  keep their ids and values. A result of the document is matched to the
  run's existing benchmark rows by test name, in order (the k-th result named
  X to the k-th row named X, by id); a matched row gains the metric names it
  lacks (a name it has keeps its stored value, even where a fresh save would
  store another, e.g. the earlier system's NULL for NaN on SQLite); a result
  without a row gets a new benchmark row with all its metrics; a run without
  a hardware row gets one when its document has ``system_info``.
* **Documents a save would refuse** (not JSON, missing ``model``, ...) get
  nothing derived; they are counted and named in the report, never an error,
  so that adoption keeps every run.
* **Duplicates.** The earlier system stored the same document twice as two
  runs; both are kept (and both get derived rows). Saving that content
  returns the oldest: smallest ``created_at`` (unknown last), then smallest
  first benchmark id (the earlier system's insertion order), then smallest id.
  Only the owner is in ``run_fingerprints``; if it is deleted, the next
  re-derivation gives the content to the remaining run.
* Idempotent: a second pass finds everything present and adds nothing.

Everything runs in the caller's transaction (adoption's, or one opened by
:func:`rederive`), a batch of runs at a time, with the bulk insert path of
``save_many`` (``executemany`` on SQLite, ``COPY``/``unnest`` on PostgreSQL).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.engine import URL

from karr_db.db import make_engine, transaction
from karr_db.dialects import for_connection
from karr_db.documents import ValidatedDocument, load_document
from karr_db.errors import KarrError, SchemaError
from karr_db.models import Benchmark
from karr_db.models.types import decode_json, parse_timestamp, utcnow
from karr_db.repositories import leaderboard_aggregate
from karr_db.repositories.events import EventsRepository
from karr_db.repositories.results.rows import (
    _HARDWARE_COLUMNS,
    _METRIC_COLUMNS,
    _bulk_insert,
    _processor,
    hardware_row,
    insert_benchmark_rows,
)

__all__ = [
    "BATCH_SIZE",
    "DeriveReport",
    "Progress",
    "derive_rows",
    "fill_fingerprints",
    "rederive",
]

logger = logging.getLogger(__name__)

#: Runs read and derived per round trip: 500 generated runs are ~100,000 metric rows.
BATCH_SIZE = 500

#: SQLite page cache while deriving, in KiB (the default is 2,000).
SQLITE_CACHE_KIB = 256 * 1024

#: How many refused documents a report names (it counts them all).
EXAMPLES = 5

#: Where :func:`derive_rows` leaves the fingerprints it computed for
#: :func:`fill_fingerprints` in the same transaction (adoption: revision 0007
#: runs after it), so that each document is parsed once.
_STASH = "karr_derived_fingerprints"


def _stash(connection: Connection) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """run id -> (fingerprint, age) computed in this transaction; what another
    transaction left on the (pooled) connection is discarded."""
    current = connection.get_transaction()
    held = connection.info.get(_STASH)
    if held is None or held[0] is not current:
        held = connection.info[_STASH] = (current, {})
    stash: dict[str, tuple[str, tuple[Any, ...]]] = held[1]
    return stash


#: ``progress(done, total)`` after each batch of runs.
Progress = Callable[[int, int], None]


class DeriveReport(BaseModel):
    """What a re-derivation added (nothing is ever removed)."""

    model_config = ConfigDict(frozen=True)

    runs: int = 0  # runs examined
    benchmarks_added: int = 0
    metrics_added: int = 0
    hardware_added: int = 0
    fingerprints_added: int = 0
    refused: int = 0  # documents a save would refuse: nothing derived for them
    refused_examples: list[str] = []  # "run id: reason", the first few

    def merged(self, other: DeriveReport) -> DeriveReport:
        counts = {
            name: getattr(self, name) + getattr(other, name)
            for name in type(self).model_fields
            if name != "refused_examples"
        }
        examples = (self.refused_examples + other.refused_examples)[:EXAMPLES]
        return DeriveReport(**counts, refused_examples=examples)


# --- reading stored runs ---------------------------------------------------------------


@dataclass
class _Stored:
    """One stored run as derivation sees it."""

    id: str
    created_at: datetime | None
    document: ValidatedDocument | None = None
    problem: str | None = None
    #: (id, test name) of its benchmark rows, in id order.
    benchmarks: list[tuple[int, str | None]] = field(default_factory=list)
    metric_names: dict[int, set[str]] = field(default_factory=dict)
    has_hardware: bool = False

    def age(self) -> tuple[Any, ...]:
        """Oldest first: created_at (unknown last), first benchmark id, id."""
        first = self.benchmarks[0][0] if self.benchmarks else None
        return (
            self.created_at is None,
            self.created_at or datetime.min,
            first is None,
            first or 0,
            self.id,
        )


def _document(text: str | None) -> ValidatedDocument:
    """The stored text read as the layer reads ``raw_json`` (markers decoded), then
    checked as a save checks it. Text without a ``$`` holds no marker and takes
    the cheaper text path of :func:`load_document`."""
    if text is None or not text.strip():
        raise ValueError("no document stored")
    if "$" not in text and "\\u0024" not in text:
        return load_document(text)
    return load_document(decode_json(json.loads(text)))


def _instant(value: Any) -> datetime | None:
    """``created_at`` as an instant, ``None`` where unknown or unreadable (it only
    orders duplicates, so it must never stop adoption)."""
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _raw_json_text(connection: Connection) -> str:
    return for_connection(connection).raw_json_text


def _placeholders(connection: Connection, count: int) -> str:
    return ", ".join([for_connection(connection).mark] * count)


def _batches(connection: Connection, batch_size: int) -> Iterator[list[tuple[Any, ...]]]:
    """(id, created_at, raw_json text) of every run, in id order, a batch at a time."""
    last: str | None = None
    sql = f"SELECT id, created_at, {_raw_json_text(connection)} FROM runs"
    mark = for_connection(connection).mark
    while True:
        where = f" WHERE id > {mark}" if last is not None else ""
        params: tuple[Any, ...] = (last,) if last is not None else ()
        rows = connection.exec_driver_sql(
            f"{sql}{where} ORDER BY id LIMIT {int(batch_size)}", params
        ).all()
        if not rows:
            return
        yield [(r[0], _instant(r[1]), r[2]) for r in rows]
        last = rows[-1][0]


def _load(connection: Connection, rows: Sequence[tuple[Any, ...]]) -> list[_Stored]:
    """The batch's documents and their existing derived rows (three statements)."""
    runs = {r[0]: _Stored(r[0], r[1]) for r in rows}
    for run_id, _, text in rows:
        stored = runs[run_id]
        try:
            stored.document = _document(text)
        except (KarrError, ValueError) as exc:
            stored.problem = str(exc)
    ids = list(runs)
    marks = _placeholders(connection, len(ids))
    for bid, run_id, name in connection.exec_driver_sql(
        f"SELECT id, run_id, test_name FROM benchmarks WHERE run_id IN ({marks}) ORDER BY id",
        tuple(ids),
    ).all():
        runs[run_id].benchmarks.append((bid, name))
        runs[run_id].metric_names[bid] = set()
    names: dict[int, set[str]] = {}
    for stored in runs.values():
        names.update(stored.metric_names)
    # From the batch's benchmarks to their metrics (not a join SQLite may start at
    # metrics from, scanning every metric row once per batch).
    for bid, name in connection.exec_driver_sql(
        "SELECT benchmark_id, metric_name FROM metrics WHERE benchmark_id IN "
        f"(SELECT id FROM benchmarks WHERE run_id IN ({marks}))",
        tuple(ids),
    ).all():
        names[bid].add(name)
    for (run_id,) in connection.exec_driver_sql(
        f"SELECT DISTINCT run_id FROM hardware WHERE run_id IN ({marks})", tuple(ids)
    ).all():
        runs[run_id].has_hardware = True
    return list(runs.values())


# --- deriving --------------------------------------------------------------------------


def _derive_batch(connection: Connection, runs: list[_Stored]) -> DeriveReport:
    """Insert what a fresh save of each document would have and the run lacks."""
    dialect = connection.dialect
    flag = _processor(Benchmark.__table__.c.passed, dialect)
    stamp = _processor(Benchmark.__table__.c.timestamp, dialect)
    nan = for_connection(connection).stored_nan
    created = stamp(utcnow())
    metric_rows: list[tuple[Any, ...]] = []
    hardware: list[tuple[Any, ...]] = []
    new_benchmarks: list[tuple[Any, ...]] = []
    new_metrics: list[list[tuple[str, float]]] = []  # per new benchmark
    refused: list[str] = []

    def value(number: float) -> Any:
        return number if nan is None or number == number else nan

    for run in runs:
        doc = run.document
        if doc is None:
            refused.append(f"{run.id}: {run.problem}")
            continue
        rows_by_name: dict[str | None, deque[int]] = {}
        for bid, name in run.benchmarks:
            rows_by_name.setdefault(name, deque()).append(bid)
        for result, flat in zip(doc.model.results, doc.metrics, strict=True):
            matches = rows_by_name.get(result.test_name)
            if matches:
                bid = matches.popleft()
                present = run.metric_names[bid]
                for f in flat:
                    if f.name not in present:
                        number = f.value
                        metric_rows.append(
                            (bid, f.name, number if nan is None or number == number else nan)
                        )
                continue
            new_benchmarks.append(
                (
                    run.id,
                    result.test_name,
                    result.test_version,
                    result.run_number,
                    flag(result.passed),
                    stamp(parse_timestamp(result.timestamp)),
                    created,
                )
            )
            new_metrics.append([(f.name, f.value) for f in flat])
        if not run.has_hardware:
            row = hardware_row(doc)
            if row is not None:
                hardware.append((run.id, *row[1:]))  # the run keeps its own id

    ids = insert_benchmark_rows(connection, new_benchmarks)
    for bid, flat_values in zip(ids, new_metrics, strict=True):
        metric_rows.extend((bid, name, value(number)) for name, number in flat_values)
    _bulk_insert(connection, "metrics", _METRIC_COLUMNS, metric_rows, copy=True)
    _bulk_insert(connection, "hardware", _HARDWARE_COLUMNS, hardware, copy=True)
    return DeriveReport(
        runs=len(runs),
        benchmarks_added=len(new_benchmarks),
        metrics_added=len(metric_rows),
        hardware_added=len(hardware),
        refused=len(refused),
        refused_examples=refused[:EXAMPLES],
    )


def derive_rows(
    connection: Connection,
    *,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> DeriveReport:
    """Give every stored run the benchmark, metric and hardware rows a fresh save of its
    ``raw_json`` would produce, in the caller's transaction (see the module docstring).

    On SQLite the transaction must hold the write lock (adoption's does;
    :func:`rederive` begins IMMEDIATE). The fingerprints computed on the way are
    kept for :func:`fill_fingerprints` in the same transaction.
    """
    total = int(connection.exec_driver_sql("SELECT count(*) FROM runs").scalar_one())
    # Millions of metric rows go into tables and indexes far larger than
    # SQLite's default 2 MB page cache; a larger cache for this connection
    # keeps their index pages in memory (restored afterwards).
    with for_connection(connection).large_cache(connection, SQLITE_CACHE_KIB):
        return _derive_all(connection, total, progress, batch_size)


def _derive_all(
    connection: Connection, total: int, progress: Progress | None, batch_size: int
) -> DeriveReport:
    report = DeriveReport()
    stash = _stash(connection)
    done = 0
    for rows in _batches(connection, batch_size):
        runs = _load(connection, rows)
        report = report.merged(_derive_batch(connection, runs))
        for run in runs:
            if run.document is not None:
                stash[run.id] = (run.document.run_id, run.age())
        done += len(rows)
        if progress is not None:
            progress(done, total)
    if report.refused:
        logger.warning(
            "%d stored document(s) would be refused by a save; nothing derived for them, e.g. %s",
            report.refused,
            "; ".join(report.refused_examples),
        )
    return report


# --- fingerprints ----------------------------------------------------------------------


def _content_id(run_id: str) -> bool:
    """Whether ``run_id`` is a content-derived id (a UUIDv5 in its canonical text): such a
    run was saved by karr_db, so its fingerprint is its id and its document need not
    be read again."""
    try:
        parsed = uuid.UUID(run_id)
    except ValueError:
        return False
    return parsed.version == 5 and str(parsed) == run_id


def fill_fingerprints(connection: Connection, *, batch_size: int = BATCH_SIZE) -> int:
    """Give every content stored in ``runs`` its entry in ``run_fingerprints``; how many
    were added.

    Runs without an entry are looked at: a content-derived id is its own
    fingerprint, any other run's document is read (unless :func:`derive_rows`
    just did). Each content goes to its oldest run (see the module docstring);
    a content that already has an owner keeps it (``ON CONFLICT DO NOTHING``,
    which also makes a concurrent save of the same content wait and agree).
    Documents a save would refuse get no entry.
    """
    stash = _stash(connection)
    connection.info.pop(_STASH, None)
    candidates: dict[str, tuple[tuple[Any, ...], str]] = {}  # fingerprint -> (age, run id)
    last = ""
    mark = for_connection(connection).mark
    while True:
        rows = connection.exec_driver_sql(
            "SELECT r.id, r.created_at, (SELECT min(b.id) FROM benchmarks b WHERE b.run_id = r.id) "
            "FROM runs r WHERE NOT EXISTS (SELECT 1 FROM run_fingerprints f WHERE f.run_id = r.id) "
            f"AND r.id > {mark} ORDER BY r.id LIMIT {int(batch_size)}",
            (last,),
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        unread: dict[str, tuple[Any, ...]] = {}
        for run_id, created_at, first in rows:
            created = _instant(created_at)
            age = (created is None, created or datetime.min, first is None, first or 0, run_id)
            if run_id in stash:
                fingerprint, age = stash[run_id]
            elif _content_id(run_id):
                fingerprint = run_id
            else:
                unread[run_id] = age
                continue
            _offer(candidates, fingerprint, age, run_id)
        if unread:
            marks = _placeholders(connection, len(unread))
            for run_id, text in connection.exec_driver_sql(
                f"SELECT id, {_raw_json_text(connection)} FROM runs WHERE id IN ({marks})",
                tuple(unread),
            ):
                try:
                    fingerprint = _document(text).run_id
                except (KarrError, ValueError):
                    continue
                _offer(candidates, fingerprint, unread[run_id], run_id)
    entries = [(fingerprint, run_id) for fingerprint, (_, run_id) in candidates.items()]
    added = 0
    for start in range(0, len(entries), 10_000):
        added += _insert_fingerprints(connection, entries[start : start + 10_000])
    return added


def _offer(
    candidates: dict[str, tuple[tuple[Any, ...], str]],
    fingerprint: str,
    age: tuple[Any, ...],
    run_id: str,
) -> None:
    held = candidates.get(fingerprint)
    if held is None or age < held[0]:
        candidates[fingerprint] = (age, run_id)


def _insert_fingerprints(connection: Connection, entries: list[tuple[str, str]]) -> int:
    if not entries:
        return 0
    return for_connection(connection).insert_ignore(
        connection, "run_fingerprints", ("fingerprint", "run_id"), entries
    )


# --- the public entry points -------------------------------------------------------------


def derive_adopted(connection: Connection) -> DeriveReport:
    """Adoption's step: derive the rows of every adopted run, in adoption's transaction."""
    return derive_rows(connection)


def rederive(
    database: str | URL | Engine,
    *,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> DeriveReport:
    """Re-derive every run's benchmarks, metrics, hardware and fingerprint in one
    transaction (all or nothing); idempotent. For runs written by the earlier
    system's code after adoption, and for when the derivation rules change.
    """
    engine = database if isinstance(database, Engine) else make_engine(database)
    try:
        with transaction(engine, immediate=True, operation="re-deriving runs") as session:
            connection = session.connection()
            if "run_fingerprints" not in inspect(connection).get_table_names():
                raise SchemaError("the database is not at the head revision: run upgrade first")
            # The event log's lock first, as every repository write takes it: fingerprint
            # rows locked before it would deadlock against a concurrent save.
            EventsRepository(session).lock_log()
            report = derive_rows(connection, progress=progress, batch_size=batch_size)
            added = fill_fingerprints(connection, batch_size=batch_size)
            if report.metrics_added or report.benchmarks_added or report.hardware_added:
                # New rows of existing runs: the leaderboard aggregate counts them too.
                leaderboard_aggregate.rebuild(session)
        return report.model_copy(update={"fingerprints_added": added})
    finally:
        if engine is not database:
            engine.dispose()
