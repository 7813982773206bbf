"""Keeping the aggregate in step with the rows: add, remove, maintained, rebuild.

See the package docstring for the semantics and the locking."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    delete,
    func,
    select,
    true,
)
from sqlalchemy.orm import Session

from karr_db.dialects import for_connection
from karr_db.models import Benchmark, Metric
from karr_db.models.leaderboard import AGGREGATE_KEY_COLUMNS
from karr_db.repositories.events import EventsRepository
from karr_db.repositories.leaderboard_aggregate.statements import (
    COLUMNS,
    DROP_EMPTY,
    ROW_KEYS,
    SET_EXTREMES,
    SUBTRACT,
    TABLE,
    add_statement,
    contributions,
    gone_statement,
)


def _lock(session: Session) -> Connection:
    EventsRepository(session).lock_log()
    return session.connection()


def add_runs(session: Session, run_ids: Sequence[str], *, log_locked: bool = False) -> None:
    """Add the stored rows of ``run_ids`` to the aggregate (after inserting them); one statement.

    ``log_locked``: the caller holds the event log's lock already (it appended
    an event in this transaction), which spares a round trip.
    """
    if not run_ids:
        return
    connection = session.connection()
    if not (log_locked or for_connection(connection).inserts_hold_log_lock):
        connection = _lock(session)
    connection.execute(add_statement(connection.dialect.name), {"run_ids": list(run_ids)})


def remove_runs(session: Session, run_ids: Sequence[str]) -> None:
    """Take the rows of ``run_ids`` out of the aggregate; call it while they still exist.

    Groups left without rows are deleted; a group that loses its minimum or
    maximum gets them recomputed from its remaining rows.
    """
    if not run_ids:
        return
    ids = list(run_ids)
    connection = _lock(session)
    gone = connection.execute(gone_statement(), {"run_ids": ids}).all()
    if not gone:
        return
    keys = [(g.metric_name, g.group_key) for g in gone]
    connection.execute(
        SUBTRACT,
        [
            {
                "m": g.metric_name,
                "k": g.group_key,
                "rows": g.row_count,
                "count": g.value_count,
                "sum": g.value_sum,
                "nf": g.non_finite,
            }
            for g in gone
        ],
    )
    connection.execute(DROP_EMPTY, [{"m": m, "k": k} for m, k in keys])
    extremes = []
    # Groups that lost an extreme, by their run-level columns (all but the test
    # name): the runs removed together mostly share them, so one read each.
    recompute: dict[tuple[Any, ...], list[Any]] = {}
    for g in gone:
        if g.stored_count is None or g.value_count == 0:
            continue
        if g.stored_count - g.value_count <= 0:
            extremes.append({"m": g.metric_name, "k": g.group_key, "lo": None, "hi": None})
        elif g.value_min <= g.stored_min or g.value_max >= g.stored_max:
            runs_key = tuple(getattr(g, name) for name in AGGREGATE_KEY_COLUMNS[1:])
            recompute.setdefault(runs_key, []).append(g)
    for runs_key, groups in recompute.items():
        found = _extremes(connection, runs_key, sorted({g.metric_name for g in groups}), ids)
        for g in groups:
            lo, hi = found.get((g.metric_name, g.group_key), (None, None))
            extremes.append({"m": g.metric_name, "k": g.group_key, "lo": lo, "hi": hi})
    if extremes:
        connection.execute(SET_EXTREMES, extremes)


def _extremes(
    connection: Connection, runs_key: tuple[Any, ...], metrics: list[str], excluded: list[str]
) -> dict[tuple[str, str], tuple[Any, Any]]:
    """Finite min and max per (metric, group) of the runs with these run-level columns,
    leaving out the runs being removed.

    Plain equality per column (``IS NULL`` for NULL), so the runs are found by
    ``idx_runs_model_engine_timestamp`` and only their metric rows are read;
    ``IS NOT DISTINCT FROM`` would defeat the indexes.
    """
    conditions = [Metric.metric_name.in_(metrics), Benchmark.run_id.not_in(excluded)]
    for column, wanted in zip(ROW_KEYS[1:], runs_key, strict=True):
        conditions.append(column.is_(None) if wanted is None else column == wanted)
    rows = connection.execute(contributions(and_(*conditions))).all()
    return {(r.metric_name, r.group_key): (r.value_min, r.value_max) for r in rows}


@contextmanager
def maintained(session: Session, run_ids: Sequence[str]) -> Iterator[None]:
    """Keep the aggregate right across any change to the rows of ``run_ids``.

    Their contribution is removed on entry and their rows' contribution added
    back on exit (not on an exception: the transaction is then rolled back
    anyway). Works for new runs (nothing to remove), deleted runs (nothing to
    add back), and re-derived metrics or hardware of existing runs alike.
    """
    ids = list(dict.fromkeys(run_ids))
    remove_runs(session, ids)
    yield
    add_runs(session, ids)


def rebuild(session: Session) -> int:
    """Recompute the whole aggregate from the rows (two statements); the number of groups."""
    connection = _lock(session)
    connection.execute(delete(TABLE))
    connection.execute(TABLE.insert().from_select(list(COLUMNS), contributions(true())))
    return int(connection.execute(select(func.count()).select_from(TABLE)).scalar_one())
