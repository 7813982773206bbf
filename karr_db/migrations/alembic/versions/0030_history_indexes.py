"""Revision 0030, beyond the reference: indexes that answer a metric history's
runs and benchmarks from the index alone.

Adds no table and no column, only two indexes the reference
does not have (docs/performance.md). A history page walks a model and engine's
runs in time order, each run's benchmarks, then each benchmark's value of the
metric: a few index probes a point, and without these indexes a table fetch
for each run and each benchmark besides:

* ``idx_runs_model_engine_history`` on runs (model, engine, timestamp, id): the
  runs of the page with their ids, in the page's order (revision 0004's
  ``idx_runs_model_engine_timestamp`` lacks the id).
* ``idx_benchmarks_run_history`` on benchmarks (run_id, id, test_name,
  run_number): a run's benchmarks with what a point shows (the reference's
  ``idx_benchmarks_run_id`` sends every probe to the table).

The metric's row gets none: on SQLite revision 0004's
``idx_metrics_name_benchmark`` already carries its id (the rowid), and on
PostgreSQL an index with the id measured no gain for its size.
"""

from karr_db.migrations import ops

revision: str = "0030"
down_revision: str | None = "0029"


contract = ops.RevisionContract(
    reference_schema_version=None,
    indexes=(
        ops.Index("idx_runs_model_engine_history", "runs", ("model", "engine", "timestamp", "id")),
        ops.Index(
            "idx_benchmarks_run_history",
            "benchmarks",
            ("run_id", "id", "test_name", "run_number"),
        ),
    ),
)


def upgrade() -> None:
    ops.upgrade_declared(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
