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

Rules, decided here:

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

Two callers: ``upgrade``'s derivation step (:mod:`karr_db.migrations.derivation`)
derives the runs adoption and revision 0007 queued with :func:`derive_runs`, a
batch per transaction, oldest first; :func:`rederive` derives every run in one
transaction. Both insert with the bulk path of ``save_many`` (``executemany``
on SQLite, ``COPY``/``unnest`` on PostgreSQL).

Documents are checked by the save path's own checker (:func:`load_document`),
so derivation accepts and derives exactly what a save does. Everything runs
in the calling process: a killed caller leaves no process behind holding its
connection and the event log's lock.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, inspect
from sqlalchemy.engine import URL

from karr_db.derive.common import BATCH_SIZE, DeriveReport, Progress
from karr_db.derive.fingerprints import fill_fingerprints
from karr_db.derive.parse import _derived as _derived
from karr_db.derive.parse import _document as _document
from karr_db.derive.rows import derive_rows, derive_runs
from karr_db.derive.verify import false_fingerprints
from karr_db.engine import make_engine
from karr_db.errors import SchemaError
from karr_db.models import RunFingerprint
from karr_db.repositories import leaderboard_aggregate
from karr_db.uow import transaction

__all__ = [
    "BATCH_SIZE",
    "DeriveReport",
    "Progress",
    "derive_rows",
    "derive_runs",
    "fill_fingerprints",
    "rederive",
]


def rederive(
    database: str | URL | Engine,
    *,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> DeriveReport:
    """Re-derive every run's benchmarks, metrics, hardware and fingerprint in one
    transaction (all or nothing), then the leaderboard aggregate; idempotent. For runs
    written by the earlier system's code after adoption, for when the derivation rules
    change, and to make the leaderboard extremes deletes left unknown known again.
    """
    engine = database if isinstance(database, Engine) else make_engine(database)
    try:
        with transaction(engine, immediate=True, operation="re-deriving runs") as unit:
            connection = unit.session.connection()
            if "run_fingerprints" not in inspect(connection).get_table_names():
                raise SchemaError("the database is not at the head revision: run upgrade first")
            # The event log's lock first, as every repository write takes it: fingerprint
            # rows locked before it would deadlock against a concurrent save.
            unit.events.lock_log()
            report = derive_rows(connection, progress=progress, batch_size=batch_size)
            # Entries that name a run not holding their content go, and are filled again.
            false = false_fingerprints(connection)
            for start in range(0, len(false), batch_size):
                connection.execute(
                    delete(RunFingerprint).where(
                        RunFingerprint.fingerprint.in_(
                            [f for f, _ in false[start : start + batch_size]]
                        )
                    )
                )
            added = fill_fingerprints(connection, batch_size=batch_size)
            # The aggregate from the rows: it counts the new rows, and every extreme a
            # delete left unknown is known again (a pass over the rows, as this is).
            leaderboard_aggregate.rebuild(unit.session)
        return report.model_copy(update={"fingerprints_added": added})
    finally:
        if engine is not database:
            engine.dispose()
