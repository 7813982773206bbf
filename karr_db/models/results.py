"""Benchmark results: a run owns its benchmarks (which own their metrics) and its hardware."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from karr_db.models.base import Base
from karr_db.models.types import Double, IntBool, JSONDocument, UTCDateTime

if TYPE_CHECKING:
    from karr_db.models.campaigns import QuickTest

#: Owned children (``cascade="all, delete-orphan"``) are deleted by the
#: database's ON DELETE CASCADE (``passive_deletes=True``), never loaded by the
#: ORM just to be deleted; ``lazy="raise"`` makes every load explicit, so no
#: N+1 query can hide.
_OWNED = "all, delete-orphan"


class Run(Base):
    """One complete ``kitt run``: the lossless document plus its headline columns."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("idx_runs_model", "model"),
        Index("idx_runs_engine", "engine"),
        Index("idx_runs_suite_name", "suite_name"),
        Index("idx_runs_timestamp", "timestamp"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    model: Mapped[str | None] = mapped_column(Text)
    engine: Mapped[str | None] = mapped_column(Text)
    suite_name: Mapped[str | None] = mapped_column(Text)
    timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    passed: Mapped[bool | None] = mapped_column(IntBool)
    total_benchmarks: Mapped[int | None] = mapped_column(Integer)
    passed_count: Mapped[int | None] = mapped_column(Integer)
    failed_count: Mapped[int | None] = mapped_column(Integer)
    total_time_seconds: Mapped[float | None] = mapped_column(Double)
    kitt_version: Mapped[str | None] = mapped_column(Text)
    raw_json: Mapped[Any] = mapped_column(JSONDocument, nullable=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    benchmarks: Mapped[list[Benchmark]] = relationship(
        back_populates="run", cascade=_OWNED, passive_deletes=True, lazy="raise"
    )
    hardware: Mapped[list[Hardware]] = relationship(
        back_populates="run", cascade=_OWNED, passive_deletes=True, lazy="raise"
    )
    # Quick tests are not owned: deleting a run they point to must be refused
    # (or explicitly detached) by the repository, never silently nulled here.
    quick_tests: Mapped[list[QuickTest]] = relationship(
        back_populates="result", passive_deletes="all", lazy="raise"
    )

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, model={self.model!r}, engine={self.engine!r})"


class Benchmark(Base):
    """One benchmark result within a run."""

    __tablename__ = "benchmarks"
    __table_args__ = (
        Index("idx_benchmarks_run_id", "run_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str | None] = mapped_column(Text, ForeignKey("runs.id", ondelete="CASCADE"))
    test_name: Mapped[str | None] = mapped_column(Text)
    test_version: Mapped[str | None] = mapped_column(Text)
    run_number: Mapped[int | None] = mapped_column(Integer)
    passed: Mapped[bool | None] = mapped_column(IntBool)
    timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    run: Mapped[Run | None] = relationship(back_populates="benchmarks", lazy="raise")
    metrics: Mapped[list[Metric]] = relationship(
        back_populates="benchmark", cascade=_OWNED, passive_deletes=True, lazy="raise"
    )

    def __repr__(self) -> str:
        return f"Benchmark(id={self.id!r}, run_id={self.run_id!r}, test_name={self.test_name!r})"


class Metric(Base):
    """One numeric metric value of a benchmark (nested names are dotted)."""

    __tablename__ = "metrics"
    __table_args__ = (
        Index("idx_metrics_benchmark_id", "benchmark_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    benchmark_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("benchmarks.id", ondelete="CASCADE")
    )
    metric_name: Mapped[str | None] = mapped_column(Text)
    metric_value: Mapped[float | None] = mapped_column(Double)

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

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str | None] = mapped_column(Text, ForeignKey("runs.id", ondelete="CASCADE"))
    gpu_model: Mapped[str | None] = mapped_column(Text)
    gpu_vram_gb: Mapped[int | None] = mapped_column(Integer)
    gpu_count: Mapped[int | None] = mapped_column(Integer)
    cpu_model: Mapped[str | None] = mapped_column(Text)
    cpu_cores: Mapped[int | None] = mapped_column(Integer)
    ram_gb: Mapped[int | None] = mapped_column(Integer)
    environment_type: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str | None] = mapped_column(Text)

    run: Mapped[Run | None] = relationship(back_populates="hardware", lazy="raise")

    def __repr__(self) -> str:
        return f"Hardware(id={self.id!r}, run_id={self.run_id!r}, gpu_model={self.gpu_model!r})"
