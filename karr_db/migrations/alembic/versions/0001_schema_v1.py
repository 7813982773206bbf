"""Schema version 1: runs, benchmarks, metrics, hardware and schema_version.

Describes the schema as it is at this revision; it does not
import the models. Dialect differences follow the reference's "PostgreSQL
Differences" table.
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from karr_db.migrations import ops

revision: str = "0001"
down_revision: str | None = None


# TEXT / INTEGER / REAL on SQLite; the reference's native types on PostgreSQL.
TIMESTAMP = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
JSON = sa.Text().with_variant(postgresql.JSONB(), "postgresql")
BOOLEAN = sa.Integer().with_variant(postgresql.BOOLEAN(), "postgresql")
DOUBLE: sa.types.TypeEngine[float] = sa.REAL().with_variant(
    postgresql.DOUBLE_PRECISION(), "postgresql"
)


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
        sa.Column(
            "applied_at", TIMESTAMP, nullable=True, comment="When that version was applied (UTC)"
        ),
        sa.PrimaryKeyConstraint("version", name="pk_schema_version"),
    )
    runs = sa.Table(
        "runs",
        metadata,
        sa.Column(
            "id",
            sa.Text(),
            nullable=False,
            comment="Run identifier: a UUID derived from the result document's content",
        ),
        sa.Column("model", sa.Text(), nullable=True, comment="Model path or name"),
        sa.Column(
            "engine", sa.Text(), nullable=True, comment="Inference engine that served the model"
        ),
        sa.Column("suite_name", sa.Text(), nullable=True, comment="Test suite that was executed"),
        sa.Column("timestamp", TIMESTAMP, nullable=True, comment="When the run started (UTC)"),
        sa.Column("passed", BOOLEAN, nullable=True, comment="Whether the run passed overall"),
        sa.Column(
            "total_benchmarks", sa.Integer(), nullable=True, comment="Number of benchmarks executed"
        ),
        sa.Column(
            "passed_count", sa.Integer(), nullable=True, comment="Number of benchmarks that passed"
        ),
        sa.Column(
            "failed_count", sa.Integer(), nullable=True, comment="Number of benchmarks that failed"
        ),
        sa.Column(
            "total_time_seconds",
            DOUBLE,
            nullable=True,
            comment="Wall-clock duration of the whole run, in seconds",
        ),
        sa.Column(
            "kitt_version",
            sa.Text(),
            nullable=True,
            comment="KITT version that produced the result",
        ),
        sa.Column(
            "raw_json",
            JSON,
            nullable=True,
            comment="The complete result document, kept for a lossless round trip",
        ),
        sa.Column(
            "created_at", TIMESTAMP, nullable=True, comment="When the row was inserted (UTC)"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    sa.Index("idx_runs_model", runs.c.model)
    sa.Index("idx_runs_engine", runs.c.engine)
    sa.Index("idx_runs_suite_name", runs.c.suite_name)
    sa.Index("idx_runs_timestamp", runs.c.timestamp)

    benchmarks = sa.Table(
        "benchmarks",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False, comment="Row identifier"),
        sa.Column("run_id", sa.Text(), nullable=True, comment="The run this benchmark belongs to"),
        sa.Column(
            "test_name",
            sa.Text(),
            nullable=True,
            comment="Benchmark name, such as throughput or mmlu",
        ),
        sa.Column("test_version", sa.Text(), nullable=True, comment="Benchmark version string"),
        sa.Column(
            "run_number", sa.Integer(), nullable=True, comment="Iteration number within the suite"
        ),
        sa.Column("passed", BOOLEAN, nullable=True, comment="Whether the benchmark passed"),
        sa.Column(
            "timestamp", TIMESTAMP, nullable=True, comment="When the benchmark started (UTC)"
        ),
        sa.Column(
            "created_at", TIMESTAMP, nullable=True, comment="When the row was inserted (UTC)"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_benchmarks"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_benchmarks_run_id_runs", ondelete="CASCADE"
        ),
        sqlite_autoincrement=True,
    )
    sa.Index("idx_benchmarks_run_id", benchmarks.c.run_id)

    metrics = sa.Table(
        "metrics",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False, comment="Row identifier"),
        sa.Column(
            "benchmark_id",
            sa.Integer(),
            nullable=True,
            comment="The benchmark this value belongs to",
        ),
        sa.Column(
            "metric_name",
            sa.Text(),
            nullable=True,
            comment="Metric key; nested keys are dotted, such as ttft_ms.p50",
        ),
        sa.Column(
            "metric_value",
            DOUBLE,
            nullable=True,
            comment="Numeric value (booleans as 1.0 or 0.0; NaN and infinities allowed)",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_metrics"),
        sa.ForeignKeyConstraint(
            ["benchmark_id"],
            ["benchmarks.id"],
            name="fk_metrics_benchmark_id_benchmarks",
            ondelete="CASCADE",
        ),
        sqlite_autoincrement=True,
    )
    sa.Index("idx_metrics_benchmark_id", metrics.c.benchmark_id)

    hardware = sa.Table(
        "hardware",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False, comment="Row identifier"),
        sa.Column(
            "run_id", sa.Text(), nullable=True, comment="The run this snapshot was taken for"
        ),
        sa.Column("gpu_model", sa.Text(), nullable=True, comment="GPU model name"),
        sa.Column("gpu_vram_gb", sa.Integer(), nullable=True, comment="GPU memory in gigabytes"),
        sa.Column("gpu_count", sa.Integer(), nullable=True, comment="Number of GPUs"),
        sa.Column("cpu_model", sa.Text(), nullable=True, comment="CPU model name"),
        sa.Column("cpu_cores", sa.Integer(), nullable=True, comment="Number of CPU cores"),
        sa.Column("ram_gb", sa.Integer(), nullable=True, comment="System memory in gigabytes"),
        sa.Column(
            "environment_type",
            sa.Text(),
            nullable=True,
            comment="Environment, such as native_linux, wsl2 or dgx",
        ),
        sa.Column(
            "fingerprint", sa.Text(), nullable=True, comment="Full hardware fingerprint string"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_hardware"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_hardware_run_id_runs", ondelete="CASCADE"
        ),
        sqlite_autoincrement=True,
    )
    sa.Index("idx_hardware_run_id", hardware.c.run_id)

    return [schema_version, runs, benchmarks, metrics, hardware]


contract = ops.RevisionContract(reference_schema_version=1, tables=tables)


def upgrade() -> None:
    ops.create_declared(contract)
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
