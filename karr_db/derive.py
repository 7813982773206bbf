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

Speed (issue 10, item 9: adoption with derivation within 3x of adoption
without): documents are checked by :func:`_quick`, the save path's checks with
cheaper code, which accepts only what :func:`load_document` accepts and gives
the same rows (anything else goes through :func:`load_document` itself;
``tests/test_derive_fast.py`` holds the two together); and, from
:data:`POOL_FROM_RUNS` runs, in forked worker processes two batches ahead of
the writes, which stay on the caller's one connection and transaction.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from multiprocessing import get_all_start_methods, get_context
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.engine import URL

from karr_db.db import transaction
from karr_db.dialects import for_connection
from karr_db.documents import (
    MAX_DEPTH,
    BenchmarkResult,
    ResultDocument,
    ValidatedDocument,
    _clean_text,
    _run_id,
    load_document,
)
from karr_db.engine import make_engine
from karr_db.errors import KarrError, SchemaError
from karr_db.limits import MAX_INDEXED_BYTES
from karr_db.models import Benchmark
from karr_db.models.types import (
    decode_json,
    dumps_document,
    parse_timestamp,
    utcnow,
)
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


#: One result of a document as its benchmark row needs it: test name, version,
#: run number, passed, timestamp text, and its flattened (name, value) pairs.
_Result = tuple[str, str | None, int | None, bool | None, str | None, list[tuple[str, float]]]


class _Derived(NamedTuple):
    """What derivation needs of one document a save accepts: exactly what
    :func:`load_document` and :func:`hardware_row` give, without the rest. Plain
    values, so that worker processes can hand it back cheaply."""

    fingerprint: str
    results: list[_Result]
    #: The ``hardware`` row a save writes (its first column the fingerprint), or None.
    hardware: tuple[Any, ...] | None


def _result(result: BenchmarkResult, flat: list[tuple[str, float]]) -> _Result:
    return (
        result.test_name,
        result.test_version,
        result.run_number,
        result.passed,
        result.timestamp,
        flat,
    )


@dataclass
class _Stored:
    """One stored run as derivation sees it."""

    id: str
    created_at: datetime | None
    document: _Derived | None = None
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


def _derived(text: str | None) -> _Derived:
    """What a save of the stored text derives; raises what :func:`_document` raises
    for a document a save would refuse.

    Stored documents are nearly all ones a save accepts, and the save path's
    checks cost ~0.5 ms each (20,000 adopted runs: about as long as the rest of
    adoption). :func:`_quick` runs the same checks more cheaply and accepts only
    what they accept; whatever it is not sure of goes through :func:`_document`,
    which then decides (and names the reason for a refusal).
    """
    quick = _quick(text)
    if quick is not None:
        return quick
    doc = _document(text)
    return _Derived(
        doc.run_id,
        [
            _result(result, [(f.name, f.value) for f in flat])
            for result, flat in zip(doc.model.results, doc.metrics, strict=True)
        ],
        hardware_row(doc),
    )


def _quick(text: str | None) -> _Derived | None:
    """:func:`load_document`'s checks and results for stored text, or ``None`` where
    it might refuse the document (or where in doubt).

    Each step is the save path's, or one that accepts a subset of what it accepts:

    * the same parse (``json.loads``, markers decoded as :func:`_document` does);
    * the depth bound by a walk that compares types instead of ``isinstance``
      against ABCs (parsed JSON holds only ``dict`` and ``list`` containers);
    * the same canonical text (the fingerprint) and its string check;
    * the same Pydantic model;
    * the same flattening (:func:`_flat`), with a name too long or used twice
      left to the save path.
    """
    if text is None or not text.strip():
        return None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if "$" in text or "\\u0024" in text:
        document = decode_json(document)
    if type(document) is not dict or _deep(document):
        return None
    canonical = dumps_document(document, sort_keys=True)
    if not _clean_text(canonical):
        return None
    try:
        model = ResultDocument.model_validate(document)
    except PydanticValidationError:
        return None
    results: list[_Result] = []
    for result in model.results:
        flat: list[tuple[str, float]] = []
        if not _flat(result.metrics, "", flat):
            return None
        names = {name for name, _ in flat}
        if len(names) != len(flat) or any(
            len(name) > _SURELY_SHORT and len(name.encode("utf-8")) > MAX_INDEXED_BYTES
            for name in names
        ):
            return None
        results.append(_result(result, flat))
    run_id = _run_id(canonical)
    hardware = None
    if model.system_info is not None:
        hardware = hardware_row(ValidatedDocument(document, model, run_id, []))
    return _Derived(run_id, results, hardware)


#: A name of at most this many characters fits the indexed bound in any encoding
#: (UTF-8 takes at most 4 bytes a character).
_SURELY_SHORT = MAX_INDEXED_BYTES // 4


def _deep(value: dict[str, Any]) -> bool:
    """Whether parsed JSON nests deeper than :data:`MAX_DEPTH` (the save path's
    ``_too_deep``, for values whose containers are exactly ``dict`` and ``list``)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        for child in item.values() if type(item) is dict else item:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
    return False


def _flat(metrics: dict[str, Any], prefix: str, out: list[tuple[str, float]]) -> bool:
    """:func:`~karr_db.documents.flatten_metrics` into ``out``, in its order; ``False``
    where it would fail on a number (an int too large for a float). Names are
    checked by the caller."""
    for key, item in metrics.items():
        kind = type(item)
        if kind is float:
            out.append((prefix + key, item))
        elif kind is dict:
            if not _flat(item, f"{prefix}{key}.", out):
                return False
        elif kind is int:
            try:
                out.append((prefix + key, float(item)))
            except OverflowError:
                return False
        elif kind is bool:
            out.append((prefix + key, 1.0 if item else 0.0))
    return True


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


def _parse(texts: list[str | None]) -> list[_Derived | str]:
    """:func:`_derived` of each text, or why a save would refuse it (run in a worker
    process or in this one)."""
    parsed: list[_Derived | str] = []
    for text in texts:
        try:
            parsed.append(_derived(text))
        except (KarrError, ValueError) as exc:
            parsed.append(str(exc))
    return parsed


def _load(
    connection: Connection, rows: Sequence[tuple[Any, ...]], parsed: Sequence[_Derived | str]
) -> list[_Stored]:
    """The batch's documents and their existing derived rows (three statements)."""
    runs = {r[0]: _Stored(r[0], r[1]) for r in rows}
    for (run_id, _, _), result in zip(rows, parsed, strict=True):
        stored = runs[run_id]
        if isinstance(result, str):
            stored.problem = result
        else:
            stored.document = result
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
    lookup = for_connection(connection).metric_names_of(connection, list(names), ids)
    for bid, name in lookup:
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
        for test_name, version, number, passed, timestamp, flat in doc.results:
            matches = rows_by_name.get(test_name)
            if matches:
                bid = matches.popleft()
                present = run.metric_names[bid]
                if nan is None:
                    metric_rows.extend((bid, n, v) for n, v in flat if n not in present)
                else:
                    metric_rows.extend(
                        (bid, n, v if v == v else nan) for n, v in flat if n not in present
                    )
                continue
            new_benchmarks.append(
                (
                    run.id,
                    test_name,
                    version,
                    number,
                    flag(passed),
                    stamp(parse_timestamp(timestamp)),
                    created,
                )
            )
            new_metrics.append(flat)
        if not run.has_hardware and doc.hardware is not None:
            hardware.append((run.id, *doc.hardware[1:]))  # the run keeps its own id

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
    workers: int | None = None,
) -> DeriveReport:
    """Give every stored run the benchmark, metric and hardware rows a fresh save of its
    ``raw_json`` would produce, in the caller's transaction (see the module docstring).

    On SQLite the transaction must hold the write lock (adoption's does;
    :func:`rederive` begins IMMEDIATE). The fingerprints computed on the way are
    kept for :func:`fill_fingerprints` in the same transaction. ``workers``
    processes check the documents (see :func:`_workers` for the default; 0 checks
    them here); only this connection writes.
    """
    total = int(connection.exec_driver_sql("SELECT count(*) FROM runs").scalar_one())
    count = _workers(total) if workers is None else workers
    # Millions of metric rows go into tables and indexes far larger than
    # SQLite's default 2 MB page cache; a larger cache for this connection
    # keeps their index pages in memory (restored afterwards).
    with for_connection(connection).large_cache(connection, SQLITE_CACHE_KIB):
        return _derive_all(connection, total, progress, batch_size, count)


#: Runs from which :func:`derive_rows` checks documents in worker processes by
#: default: starting them (a fresh interpreter importing the layer) costs about
#: a second, what checking ~2,000 documents here costs.
POOL_FROM_RUNS = 2000


def _workers(total: int) -> int:
    """Worker processes for ``total`` runs: one per CPU (at most 4); none for few runs,
    nor where processes cannot be forked (see :class:`_Parser`)."""
    if total < POOL_FROM_RUNS or "fork" not in get_all_start_methods():
        return 0
    return max(1, min(4, os.cpu_count() or 1))


class _Parser:
    """Checks the documents of the batches ahead while this process writes the rows
    of the current one: in ``workers`` processes, or here when there are none or
    they fail.

    Workers are forked: a spawned one re-imports the caller's main module, and a
    script calling ``upgrade`` without an ``if __name__ == "__main__"`` guard would
    run its upgrade again in the worker, which would wait for this transaction's
    lock while this transaction waits for the worker. A forked worker only runs
    :func:`_parse` on the texts it is sent; it never touches the connection it
    inherits and leaves through ``os._exit``.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None
        if workers > 0:
            try:
                self.pool = ProcessPoolExecutor(workers, mp_context=get_context("fork"))
            except (OSError, ValueError) as exc:
                logger.warning("checking documents in this process: %s", exc)

    def submit(self, texts: list[str | None]) -> Callable[[], list[_Derived | str]]:
        """Start checking ``texts``; the returned call gives the results in order."""
        pool = self.pool
        if pool is None:
            return lambda: _parse(texts)
        size = -(-len(texts) // self.workers)
        try:
            futures = [
                pool.submit(_parse, texts[start : start + size])
                for start in range(0, len(texts), size)
            ]
        except (BrokenProcessPool, RuntimeError) as exc:
            return self._here(texts, exc)

        def results() -> list[_Derived | str]:
            try:
                return [item for future in futures for item in future.result()]
            except (BrokenProcessPool, OSError) as exc:
                return self._here(texts, exc)()

        return results

    def _here(
        self, texts: list[str | None], exc: BaseException
    ) -> Callable[[], list[_Derived | str]]:
        logger.warning("worker processes failed (%s); checking documents in this process", exc)
        self.close()
        return lambda: _parse(texts)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


#: Batches whose documents are being checked while one is written.
_AHEAD = 2


def _derive_all(
    connection: Connection,
    total: int,
    progress: Progress | None,
    batch_size: int,
    workers: int,
) -> DeriveReport:
    report = DeriveReport()
    stash = _stash(connection)
    done = 0
    parser = _Parser(workers)
    pending: deque[tuple[list[tuple[Any, ...]], Callable[[], list[_Derived | str]]]] = deque()
    try:
        # Batches ahead: their documents are checked (in the workers) while the
        # rows of the oldest go in here.
        for rows in chain(_batches(connection, batch_size), [None]):
            if rows is not None:
                pending.append((rows, parser.submit([r[2] for r in rows])))
                if len(pending) <= _AHEAD:
                    continue
            while pending and (rows is None or len(pending) > _AHEAD):
                current, results = pending.popleft()
                runs = _load(connection, current, results())
                report = report.merged(_derive_batch(connection, runs))
                for run in runs:
                    if run.document is not None:
                        stash[run.id] = (run.document.fingerprint, run.age())
                done += len(current)
                if progress is not None:
                    progress(done, total)
    finally:
        parser.close()
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
                    fingerprint = _derived(text).fingerprint
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
