"""Schema version 1: runs, benchmarks, metrics, hardware and schema_version.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Written by hand. Describes the schema as it is at this revision; it does not
import the models. Dialect differences follow the reference's "PostgreSQL
Differences" table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from karr_db.migrations.runner import create_tables, record_schema_version, refuse_downgrade

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Recorded in the legacy ``schema_version`` table, in this revision's transaction.
karr_schema_version = 1

# TEXT / INTEGER / REAL on SQLite; the reference's native types on PostgreSQL.
TIMESTAMP = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
JSON = sa.Text().with_variant(postgresql.JSONB(), "postgresql")
BOOLEAN = sa.Integer().with_variant(postgresql.BOOLEAN(), "postgresql")
DOUBLE = sa.REAL().with_variant(postgresql.DOUBLE_PRECISION(), "postgresql")


def tables(metadata: sa.MetaData) -> list[sa.Table]:
    """The tables this revision adds, as they are at this revision (adoption reuses them)."""
    schema_version = sa.Table(
        "schema_version",
        metadata,
        # Beyond the reference: a version is recorded once.
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("applied_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("version", name="pk_schema_version"),
    )
    runs = sa.Table(
        "runs",
        metadata,
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("engine", sa.Text(), nullable=True),
        sa.Column("suite_name", sa.Text(), nullable=True),
        sa.Column("timestamp", TIMESTAMP, nullable=True),
        sa.Column("passed", BOOLEAN, nullable=True),
        sa.Column("total_benchmarks", sa.Integer(), nullable=True),
        sa.Column("passed_count", sa.Integer(), nullable=True),
        sa.Column("failed_count", sa.Integer(), nullable=True),
        sa.Column("total_time_seconds", DOUBLE, nullable=True),
        sa.Column("kitt_version", sa.Text(), nullable=True),
        sa.Column("raw_json", JSON, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    sa.Index("idx_runs_model", runs.c.model)
    sa.Index("idx_runs_engine", runs.c.engine)
    sa.Index("idx_runs_suite_name", runs.c.suite_name)
    sa.Index("idx_runs_timestamp", runs.c.timestamp)

    benchmarks = sa.Table(
        "benchmarks",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("test_name", sa.Text(), nullable=True),
        sa.Column("test_version", sa.Text(), nullable=True),
        sa.Column("run_number", sa.Integer(), nullable=True),
        sa.Column("passed", BOOLEAN, nullable=True),
        sa.Column("timestamp", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=True),
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
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("benchmark_id", sa.Integer(), nullable=True),
        sa.Column("metric_name", sa.Text(), nullable=True),
        sa.Column("metric_value", DOUBLE, nullable=True),
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
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("gpu_model", sa.Text(), nullable=True),
        sa.Column("gpu_vram_gb", sa.Integer(), nullable=True),
        sa.Column("gpu_count", sa.Integer(), nullable=True),
        sa.Column("cpu_model", sa.Text(), nullable=True),
        sa.Column("cpu_cores", sa.Integer(), nullable=True),
        sa.Column("ram_gb", sa.Integer(), nullable=True),
        sa.Column("environment_type", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_hardware"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_hardware_run_id_runs", ondelete="CASCADE"
        ),
        sqlite_autoincrement=True,
    )
    sa.Index("idx_hardware_run_id", hardware.c.run_id)

    return [schema_version, runs, benchmarks, metrics, hardware]


def upgrade() -> None:
    create_tables(tables(sa.MetaData()))
    record_schema_version(karr_schema_version)


def downgrade() -> None:
    refuse_downgrade()
