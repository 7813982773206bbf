"""Schema version 1: runs, benchmarks, metrics, hardware and schema_version.

Describes the schema as it is at this revision; it does not
import the models. Dialect differences follow the reference's "PostgreSQL
Differences" table.
"""

import sqlalchemy as sa

from karr_db.migrations import frozen, ops

revision: str = "0001"
down_revision: str | None = None


def tables(metadata: sa.MetaData) -> list[sa.Table]:
    """The tables this revision adds, as they are at this revision (adoption reuses them)."""
    schema_version = sa.Table(
        "schema_version",
        metadata,
        # Beyond the reference: a version is recorded once.
        sa.Column(
            "version",
            sa.Integer(),
            autoincrement=False,
            nullable=False,
            comment="Schema version number that a migration recorded",
        ),
        frozen.column("applied_at", frozen.TIMESTAMP, "When that version was applied (UTC)"),
        sa.PrimaryKeyConstraint("version", name="pk_schema_version"),
    )
    runs = sa.Table(
        "runs",
        metadata,
        frozen.column(
            "id",
            sa.Text(),
            "Run identifier: a UUID derived from the result document's content",
            nullable=False,
        ),
        frozen.column("model", sa.Text(), "Model path or name"),
        frozen.column("engine", sa.Text(), "Inference engine that served the model"),
        frozen.column("suite_name", sa.Text(), "Test suite that was executed"),
        frozen.column("timestamp", frozen.TIMESTAMP, "When the run started (UTC)"),
        frozen.column("passed", frozen.BOOLEAN, "Whether the run passed overall"),
        frozen.column("total_benchmarks", sa.Integer(), "Number of benchmarks executed"),
        frozen.column("passed_count", sa.Integer(), "Number of benchmarks that passed"),
        frozen.column("failed_count", sa.Integer(), "Number of benchmarks that failed"),
        frozen.column(
            "total_time_seconds", frozen.DOUBLE, "Wall-clock duration of the whole run, in seconds"
        ),
        frozen.column("kitt_version", sa.Text(), "KITT version that produced the result"),
        frozen.column(
            "raw_json", frozen.JSON, "The complete result document, kept for a lossless round trip"
        ),
        frozen.column("created_at", frozen.TIMESTAMP, "When the row was inserted (UTC)"),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    sa.Index("idx_runs_model", runs.c.model)
    sa.Index("idx_runs_engine", runs.c.engine)
    sa.Index("idx_runs_suite_name", runs.c.suite_name)
    sa.Index("idx_runs_timestamp", runs.c.timestamp)

    benchmarks = sa.Table(
        "benchmarks",
        metadata,
        frozen.column("id", sa.Integer(), "Row identifier", nullable=False),
        frozen.column("run_id", sa.Text(), "The run this benchmark belongs to"),
        frozen.column("test_name", sa.Text(), "Benchmark name, such as throughput or mmlu"),
        frozen.column("test_version", sa.Text(), "Benchmark version string"),
        frozen.column("run_number", sa.Integer(), "Iteration number within the suite"),
        frozen.column("passed", frozen.BOOLEAN, "Whether the benchmark passed"),
        frozen.column("timestamp", frozen.TIMESTAMP, "When the benchmark started (UTC)"),
        frozen.column("created_at", frozen.TIMESTAMP, "When the row was inserted (UTC)"),
        sa.PrimaryKeyConstraint("id", name="pk_benchmarks"),
        frozen.foreign_key("benchmarks", "run_id", "runs", ondelete="CASCADE"),
        sqlite_autoincrement=True,
    )
    sa.Index("idx_benchmarks_run_id", benchmarks.c.run_id)

    metrics = sa.Table(
        "metrics",
        metadata,
        frozen.column("id", sa.Integer(), "Row identifier", nullable=False),
        frozen.column("benchmark_id", sa.Integer(), "The benchmark this value belongs to"),
        frozen.column(
            "metric_name", sa.Text(), "Metric key; nested keys are dotted, such as ttft_ms.p50"
        ),
        frozen.column(
            "metric_value",
            frozen.DOUBLE,
            "Numeric value (booleans as 1.0 or 0.0; NaN and infinities allowed)",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_metrics"),
        frozen.foreign_key("metrics", "benchmark_id", "benchmarks", ondelete="CASCADE"),
        sqlite_autoincrement=True,
    )
    sa.Index("idx_metrics_benchmark_id", metrics.c.benchmark_id)

    hardware = sa.Table(
        "hardware",
        metadata,
        frozen.column("id", sa.Integer(), "Row identifier", nullable=False),
        frozen.column("run_id", sa.Text(), "The run this snapshot was taken for"),
        frozen.column("gpu_model", sa.Text(), "GPU model name"),
        frozen.column("gpu_vram_gb", sa.Integer(), "GPU memory in gigabytes"),
        frozen.column("gpu_count", sa.Integer(), "Number of GPUs"),
        frozen.column("cpu_model", sa.Text(), "CPU model name"),
        frozen.column("cpu_cores", sa.Integer(), "Number of CPU cores"),
        frozen.column("ram_gb", sa.Integer(), "System memory in gigabytes"),
        frozen.column(
            "environment_type", sa.Text(), "Environment, such as native_linux, wsl2 or dgx"
        ),
        frozen.column("fingerprint", sa.Text(), "Full hardware fingerprint string"),
        sa.PrimaryKeyConstraint("id", name="pk_hardware"),
        frozen.foreign_key("hardware", "run_id", "runs", ondelete="CASCADE"),
        sqlite_autoincrement=True,
    )
    sa.Index("idx_hardware_run_id", hardware.c.run_id)

    return [schema_version, runs, benchmarks, metrics, hardware]


contract = ops.RevisionContract(reference_schema_version=1, tables=tables)


def upgrade() -> None:
    ops.upgrade_declared(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
