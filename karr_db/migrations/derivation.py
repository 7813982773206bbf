"""``upgrade``'s derivation step: the rows of the runs adoption and revision 0007
queued (:mod:`karr_db.migrations.pending`), a batch per transaction.

Not part of any revision: revisions and adoption change the schema and queue
the runs, and the code that derives rows (:mod:`karr_db.derive`, which reads
documents with the save path's checks) runs here, after them, as it is in
this release. Each batch is one transaction that derives its runs and takes
them off the queue, so a killed upgrade keeps the batches it committed and the
next ``upgrade`` goes on from the first run not derived; deriving a run again
adds nothing. The transaction that takes the last runs off also rebuilds the
leaderboard aggregate from the rows (the batches added metric rows it does not
count yet), so the database is never seen ready with either half done.
Batches take the event log's lock, as every write does, so two upgraders (or
a save through a layer that skipped the readiness check) take turns rather
than derive a run twice.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from karr_db.derive import BATCH_SIZE, DeriveReport, Progress, derive_runs
from karr_db.migrations import pending
from karr_db.repositories import leaderboard_aggregate
from karr_db.uow import transaction

__all__ = ["derive_pending"]

log = logging.getLogger(__name__)


def derive_pending(
    engine: Engine,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> DeriveReport | None:
    """Derive every queued run, a batch per committed transaction; ``None`` when
    no run was queued. ``progress(done, total)`` after each batch."""
    report: DeriveReport | None = None
    done = 0
    total: int | None = None
    while True:
        with transaction(engine, immediate=True, operation="deriving queued runs") as unit:
            connection = unit.session.connection()
            unit.events.lock_log()
            ids = pending.next_batch(connection, batch_size) if pending.exists(connection) else []
            if not ids:
                return report
            if total is None:
                total = pending.count(connection)
            batch = derive_runs(connection, ids)
            pending.remove(connection, ids)
            report = batch if report is None else report.merged(batch)
            finished = not pending.has_runs(connection)
            if finished:
                leaderboard_aggregate.rebuild(unit.session)
        done += len(ids)
        if progress is not None:
            progress(done, max(total, done))
        if finished:
            if report.refused:
                log.warning(
                    "%d stored document(s) would be refused by a save; nothing derived for "
                    "them, e.g. %s",
                    report.refused,
                    "; ".join(report.refused_examples),
                )
            return report
