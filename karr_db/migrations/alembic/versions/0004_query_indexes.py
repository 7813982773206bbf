"""Revision 0004, beyond the reference: indexes for the dashboard's queries.

Adds no table and no column, only three indexes the reference
does not have; each earned its place in the benchmark (docs/performance.md):

* ``idx_metrics_name_benchmark`` on metrics (metric_name, benchmark_id,
  metric_value): a leaderboard or a metric history reads one metric's values;
  without it both scan every metric row (~200 per run), with it they read the
  few they need, from the index alone.
* ``idx_runs_model_engine_timestamp`` on runs (model, engine, timestamp): the
  latest runs of one model and engine, and their metric history, in time order.
* ``idx_runs_passed`` on runs (passed): counting passed or failed runs from the
  index instead of every run row (on SQLite a run row carries its whole
  document).
"""

from karr_db.migrations import ops

revision: str = "0004"
down_revision: str | None = "0003"


contract = ops.RevisionContract(
    reference_schema_version=None,
    indexes=(
        ops.Index(
            "idx_metrics_name_benchmark", "metrics", ("metric_name", "benchmark_id", "metric_value")
        ),
        ops.Index("idx_runs_model_engine_timestamp", "runs", ("model", "engine", "timestamp")),
        ops.Index("idx_runs_passed", "runs", ("passed",)),
    ),
)


def upgrade() -> None:
    ops.upgrade_declared(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
