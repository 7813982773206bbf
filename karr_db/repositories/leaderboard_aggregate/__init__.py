"""The leaderboard aggregate (``leaderboard_aggregates``, beyond the reference): upkeep and reads.

Every metric row counts once in the aggregate row of its metric and group (the
finest grouping a leaderboard offers: test name, model, engine, suite, KITT
version and the run's hardware headline), under the same NaN semantics as the
row-level leaderboard: finite values go into count, sum, min and max;
NaN and the infinities only into ``non_finite``; every row, NULL ones too, into
``row_count`` (a group is dropped when it has no rows left).

Upkeep, in the caller's transaction (all or nothing with the change itself):

* :func:`add_runs` after a run's rows were inserted (every save does it),
* :func:`remove_runs` before a run's rows go (every delete does it),
* :func:`maintained` around any other change to runs' rows (re-derived
  metrics, a changed hardware row): it removes their contribution first and
  adds it back after,
* :func:`rebuild` recomputes everything from the rows (adoption, repairs).

Count, sum and non-finite count follow additions and removals exactly, so
upkeep costs what the changed runs' own rows cost, never a read of a group's
history. A removal that reaches a group's minimum or maximum leaves that
extreme unknown (NULL while ``value_count`` is positive; later additions keep
it unknown): a leaderboard that would read such a group answers from the rows
instead (:meth:`ResultsRepository.leaderboard` does), and :func:`rebuild`
(which ``karr-db rederive`` runs) makes every extreme known again. Sums are
floating point: after many removals an average can differ from the row-level
one in its last digits; :func:`rebuild` resets them too.

Concurrency: aggregate rows change under the event log's lock
(:meth:`EventsRepository.lock_log`), so one writer at a time, in the order the locks
were granted: no lost update, no deadlock. :func:`add_runs` and :func:`remove_runs`
run inside a save, a delete or derivation, which took it first; :func:`maintained`
and :func:`rebuild` take it themselves. SQLite has one writer anyway.
"""

from karr_db.repositories.leaderboard_aggregate.reads import leaderboard
from karr_db.repositories.leaderboard_aggregate.statements import AGGREGATE_FILTERS
from karr_db.repositories.leaderboard_aggregate.upkeep import (
    add_runs,
    maintained,
    rebuild,
    remove_runs,
)

__all__ = [
    "AGGREGATE_FILTERS",
    "add_runs",
    "leaderboard",
    "maintained",
    "rebuild",
    "remove_runs",
]
