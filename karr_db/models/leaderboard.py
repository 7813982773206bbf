"""Beyond the reference (revision 0010): running totals of every metric per group.

A leaderboard over the rows reads every stored value of its metric, so it grows
with history. This table holds, per metric and per group of runs, the count,
sum, minimum and maximum of the finite values and the count of the non-finite
ones; it is maintained in the same transaction as every save and delete
(:mod:`karr_db.repositories.leaderboard_aggregate`), so count/avg/min/max
leaderboards read a few hundred rows whatever the history. A NULL minimum or
maximum in a group with finite values is unknown: a delete took that extreme away.
"""

from __future__ import annotations

from sqlalchemy.orm import Mapped, mapped_column

from karr_db.models.base import Base

#: The group columns, finest grain: any leaderboard grouping by a subset of them
#: (and filtering on them by equality) is a sum over this table's rows.
AGGREGATE_KEY_COLUMNS = (
    "test_name",
    "model",
    "engine",
    "suite_name",
    "kitt_version",
    "gpu_model",
    "environment_type",
)


class LeaderboardAggregate(Base):
    """Running totals of one metric's finite values for one group of runs (beyond the reference)."""

    __tablename__ = "leaderboard_aggregates"

    metric_name: Mapped[str] = mapped_column(
        primary_key=True, comment="Metric key, as in metrics.metric_name"
    )
    group_key: Mapped[str] = mapped_column(
        primary_key=True,
        comment=(
            "The group columns encoded in one text (each as its length and value, or ~ for NULL), "
            "so that NULL groups have a key a primary key can enforce; its MD5 on PostgreSQL, "
            "whose index entries are bounded"
        ),
    )
    test_name: Mapped[str | None] = mapped_column(comment="Benchmark name of the values")
    model: Mapped[str | None] = mapped_column(comment="Model of the runs")
    engine: Mapped[str | None] = mapped_column(comment="Engine of the runs")
    suite_name: Mapped[str | None] = mapped_column(comment="Suite of the runs")
    kitt_version: Mapped[str | None] = mapped_column(comment="KITT version of the runs")
    gpu_model: Mapped[str | None] = mapped_column(
        comment="GPU of the runs' hardware headline (their first hardware row)"
    )
    environment_type: Mapped[str | None] = mapped_column(
        comment="Environment of the runs' hardware headline"
    )
    row_count: Mapped[int] = mapped_column(comment="How many metric rows (NULL values included)")
    value_count: Mapped[int] = mapped_column(comment="How many finite values")
    value_sum: Mapped[float] = mapped_column(
        comment=(
            "Sum of the finite values times 2^-64, which cannot overflow "
            "(avg = value_sum / value_count * 2^64)"
        )
    )
    value_min: Mapped[float | None] = mapped_column(comment="Smallest finite value")
    value_max: Mapped[float | None] = mapped_column(comment="Largest finite value")
    non_finite: Mapped[int] = mapped_column(
        comment="How many NaN or infinite values (left out of the rest)"
    )

    def __repr__(self) -> str:
        return f"LeaderboardAggregate(metric={self.metric_name!r}, key={self.group_key!r})"
