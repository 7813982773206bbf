"""Benchmark results: a run owns its benchmarks (which own their metrics) and its hardware."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column, relationship

from karr_db.models.base import Base, JSONValue, owned_rows, referencing_rows

if TYPE_CHECKING:
    from karr_db.models.campaigns import QuickTest


class Run(Base):
    """One complete ``kitt run``: the lossless document plus its headline columns."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("idx_runs_model", "model"),
        Index("idx_runs_engine", "engine"),
        Index("idx_runs_suite_name", "suite_name"),
        Index("idx_runs_timestamp", "timestamp"),
        # Beyond the reference (revision 0004, see docs/performance.md): the
        # latest runs of a model and engine and their metric history in time
        # order; and counts by outcome without reading every run row (on
        # SQLite a run row carries its whole document).
        Index("idx_runs_model_engine_timestamp", "model", "engine", "timestamp"),
        Index("idx_runs_passed", "passed"),
        # Beyond the reference (revision 0030): a metric history's runs, with
        # their ids, in its order, from the index alone.
        Index("idx_runs_model_engine_history", "model", "engine", "timestamp", "id"),
    )

    id: Mapped[str] = mapped_column(
        primary_key=True,
        comment="Run identifier: a UUID derived from the result document's content",
    )
    model: Mapped[str | None] = mapped_column(comment="Model path or name")
    engine: Mapped[str | None] = mapped_column(comment="Inference engine that served the model")
    suite_name: Mapped[str | None] = mapped_column(comment="Test suite that was executed")
    timestamp: Mapped[datetime | None] = mapped_column(comment="When the run started (UTC)")
    passed: Mapped[bool | None] = mapped_column(comment="Whether the run passed overall")
    total_benchmarks: Mapped[int | None] = mapped_column(comment="Number of benchmarks executed")
    passed_count: Mapped[int | None] = mapped_column(comment="Number of benchmarks that passed")
    failed_count: Mapped[int | None] = mapped_column(comment="Number of benchmarks that failed")
    total_time_seconds: Mapped[float | None] = mapped_column(
        comment="Wall-clock duration of the whole run, in seconds"
    )
    kitt_version: Mapped[str | None] = mapped_column(
        comment="KITT version that produced the result"
    )
    raw_json: Mapped[JSONValue] = mapped_column(
        comment="The complete result document, kept for a lossless round trip"
    )
    created_at: Mapped[datetime | None] = mapped_column(comment="When the row was inserted (UTC)")

    benchmarks: Mapped[list[Benchmark]] = owned_rows(back_populates="run")
    hardware: Mapped[list[Hardware]] = owned_rows(back_populates="run")
    # Quick tests are not owned: deleting a run they point to must be refused
    # (or explicitly detached) by the repository, never silently nulled here.
    quick_tests: Mapped[list[QuickTest]] = referencing_rows(back_populates="result")

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, model={self.model!r}, engine={self.engine!r})"


#: Beyond the reference (revision 0009, see docs/performance.md), PostgreSQL
#: only: the latest runs of a model and engine in the exact order ``list``
#: pages them (``timestamp DESC NULLS LAST, id DESC``), which the ascending
#: index above cannot give PostgreSQL (walked backwards it puts NULLs first),
#: so it sorted every run of the pair. SQLite orders NULLs lowest, so
#: ``DESC`` is already ``NULLS LAST`` there and the ascending index serves it
#: (SQLite also refuses ``NULLS LAST`` in an index).
Index(
    "idx_runs_model_engine_latest",
    Run.model,
    Run.engine,
    Run.timestamp.desc().nulls_last(),
    Run.id.desc(),
).ddl_if(dialect="postgresql")


class Benchmark(Base):
    """One benchmark result within a run."""

    __tablename__ = "benchmarks"
    __table_args__ = (
        Index("idx_benchmarks_run_id", "run_id"),
        # Beyond the reference (revision 0030): a run's benchmarks as a metric
        # history shows them, from the index alone.
        Index("idx_benchmarks_run_history", "run_id", "id", "test_name", "run_number"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True, comment="Row identifier")
    run_id: Mapped[str | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), comment="The run this benchmark belongs to"
    )
    test_name: Mapped[str | None] = mapped_column(
        comment="Benchmark name, such as throughput or mmlu"
    )
    test_version: Mapped[str | None] = mapped_column(comment="Benchmark version string")
    run_number: Mapped[int | None] = mapped_column(comment="Iteration number within the suite")
    passed: Mapped[bool | None] = mapped_column(comment="Whether the benchmark passed")
    timestamp: Mapped[datetime | None] = mapped_column(comment="When the benchmark started (UTC)")
    created_at: Mapped[datetime | None] = mapped_column(comment="When the row was inserted (UTC)")

    run: Mapped[Run | None] = relationship(back_populates="benchmarks", lazy="raise")
    metrics: Mapped[list[Metric]] = owned_rows(back_populates="benchmark")

    def __repr__(self) -> str:
        return f"Benchmark(id={self.id!r}, run_id={self.run_id!r}, test_name={self.test_name!r})"


class Metric(Base):
    """One numeric metric value of a benchmark (nested names are dotted)."""

    __tablename__ = "metrics"
    __table_args__ = (
        Index("idx_metrics_benchmark_id", "benchmark_id"),
        # Beyond the reference (revision 0004, see docs/performance.md):
        # leaderboards and metric histories read one metric's values from the
        # index alone instead of scanning every metric row.
        Index("idx_metrics_name_benchmark", "metric_name", "benchmark_id", "metric_value"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True, comment="Row identifier")
    benchmark_id: Mapped[int | None] = mapped_column(
        ForeignKey("benchmarks.id", ondelete="CASCADE"),
        comment="The benchmark this value belongs to",
    )
    metric_name: Mapped[str | None] = mapped_column(
        comment="Metric key; nested keys are dotted, such as ttft_ms.p50"
    )
    metric_value: Mapped[float | None] = mapped_column(
        comment="Numeric value (booleans as 1.0 or 0.0; NaN and infinities allowed)"
    )

    benchmark: Mapped[Benchmark | None] = relationship(back_populates="metrics", lazy="raise")

    def __repr__(self) -> str:
        return f"Metric(name={self.metric_name!r}, value={self.metric_value!r})"


class Hardware(Base):
    """The hardware snapshot taken when a run was executed."""

    __tablename__ = "hardware"
    __table_args__ = (
        Index("idx_hardware_run_id", "run_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True, comment="Row identifier")
    run_id: Mapped[str | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), comment="The run this snapshot was taken for"
    )
    gpu_model: Mapped[str | None] = mapped_column(comment="GPU model name")
    gpu_vram_gb: Mapped[int | None] = mapped_column(comment="GPU memory in gigabytes")
    gpu_count: Mapped[int | None] = mapped_column(comment="Number of GPUs")
    cpu_model: Mapped[str | None] = mapped_column(comment="CPU model name")
    cpu_cores: Mapped[int | None] = mapped_column(comment="Number of CPU cores")
    ram_gb: Mapped[int | None] = mapped_column(comment="System memory in gigabytes")
    environment_type: Mapped[str | None] = mapped_column(
        comment="Environment, such as native_linux, wsl2 or dgx"
    )
    fingerprint: Mapped[str | None] = mapped_column(comment="Full hardware fingerprint string")

    run: Mapped[Run | None] = relationship(back_populates="hardware", lazy="raise")

    def __repr__(self) -> str:
        return f"Hardware(id={self.id!r}, run_id={self.run_id!r}, gpu_model={self.gpu_model!r})"
