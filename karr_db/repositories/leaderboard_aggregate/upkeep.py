"""Keeping the aggregate in step with the rows: add, remove, maintained, rebuild.

See the package docstring for the semantics and the locking."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Connection, delete, func, select, true
from sqlalchemy.orm import Session

from karr_db.dialects import for_connection
from karr_db.repositories.leaderboard_aggregate.statements import (
    COLUMNS,
    DROP_EMPTY,
    GONE,
    SUBTRACT,
    TABLE,
    add_statement,
    contributions,
)


def _lock(session: Session) -> Connection:
    """Take the event log's lock (:meth:`EventsRepository.lock_log`'s, through the
    dialect seam): :func:`maintained` and :func:`rebuild` are also called on their
    own, by callers that may not hold it. :func:`add_runs` and :func:`remove_runs`
    run inside a save, a delete or derivation, which took it first."""
    connection = session.connection()
    for_connection(connection).lock_event_log(connection)
    return connection


def add_runs(session: Session, run_ids: Sequence[str]) -> None:
    """Add the stored rows of ``run_ids`` to the aggregate (after inserting them); one statement."""
    if not run_ids:
        return
    connection = session.connection()
    connection.execute(add_statement(connection.dialect.name), {"run_ids": list(run_ids)})


def remove_runs(session: Session, run_ids: Sequence[str]) -> None:
    """Take the rows of ``run_ids`` out of the aggregate; call it while they still exist.

    Three statements whose cost is that of the runs' own rows: their
    contributions are read, subtracted from their groups, and groups left
    without rows are deleted. A group whose minimum or maximum the runs held is
    left with that extreme unknown rather than reading its remaining history
    (see the package docstring).
    """
    if not run_ids:
        return
    connection = session.connection()
    gone = connection.execute(GONE, {"run_ids": list(run_ids)}).all()
    if not gone:
        return
    connection.execute(
        SUBTRACT,
        [
            {
                "m": g.metric_name,
                "k": g.group_key,
                "rows": g.row_count,
                "count": g.value_count,
                "sum": g.value_sum,
                "lo": g.value_min,
                "hi": g.value_max,
                "nf": g.non_finite,
            }
            for g in gone
        ],
    )
    connection.execute(DROP_EMPTY, [{"m": g.metric_name, "k": g.group_key} for g in gone])


@contextmanager
def maintained(session: Session, run_ids: Sequence[str]) -> Iterator[None]:
    """Keep the aggregate right across any change to the rows of ``run_ids``.

    Their contribution is removed on entry and their rows' contribution added
    back on exit (not on an exception: the transaction is then rolled back
    anyway). Works for new runs (nothing to remove), deleted runs (nothing to
    add back), and re-derived metrics or hardware of existing runs alike.
    """
    ids = list(dict.fromkeys(run_ids))
    _lock(session)
    remove_runs(session, ids)
    yield
    add_runs(session, ids)


def rebuild(session: Session) -> int:
    """Recompute the whole aggregate from the rows (two statements); the number of groups."""
    connection = _lock(session)
    connection.execute(delete(TABLE))
    connection.execute(TABLE.insert().from_select(list(COLUMNS), contributions(true())))
    return int(connection.execute(select(func.count()).select_from(TABLE)).scalar_one())
