"""Revision 0010, beyond the reference: the leaderboard aggregate, built from the stored rows.

Adds ``leaderboard_aggregates``: per metric and per group of
runs (test name, model, engine, suite, KITT version, GPU and environment of the
run's first hardware row), the number of metric rows, the count, sum, minimum
and maximum of the finite values and the number of NaN or infinite ones. Saves
and deletes keep it current in their own transaction
(``karr_db.repositories.leaderboard_aggregate``), so count/avg/min/max
leaderboards no longer read every stored value (docs/performance.md).

The upgrade fills it from the rows already stored (one ``INSERT .. SELECT``),
so an upgraded or adopted database starts with a complete aggregate. The SQL is
spelled out here, not imported, so that this revision keeps building the
table as it is at this revision.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from karr_db.migrations import frozen, ops

revision: str = "0010"
down_revision: str | None = "0009"


KEYS = (
    "test_name",
    "model",
    "engine",
    "suite_name",
    "kitt_version",
    "gpu_model",
    "environment_type",
)


COMMENTS = {
    "metric_name": "Metric key, as in metrics.metric_name",
    "group_key": (
        "The group columns encoded in one text (each as its length and value, or ~ for NULL), "
        "so that NULL groups have a key a primary key can enforce; its MD5 on PostgreSQL, "
        "whose index entries are bounded"
    ),
    "test_name": "Benchmark name of the values",
    "model": "Model of the runs",
    "engine": "Engine of the runs",
    "suite_name": "Suite of the runs",
    "kitt_version": "KITT version of the runs",
    "gpu_model": "GPU of the runs' hardware headline (their first hardware row)",
    "environment_type": "Environment of the runs' hardware headline",
    "row_count": "How many metric rows (NULL values included)",
    "value_count": "How many finite values",
    "value_sum": "Sum of the finite values times 2^-64, which cannot overflow "
    "(avg = value_sum / value_count * 2^64)",
    "value_min": "Smallest finite value",
    "value_max": "Largest finite value",
    "non_finite": "How many NaN or infinite values (left out of the rest)",
}
TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    "row_count": sa.Integer(),
    "value_count": sa.Integer(),
    "non_finite": sa.Integer(),
}
TYPES |= {"value_sum": frozen.DOUBLE, "value_min": frozen.DOUBLE, "value_max": frozen.DOUBLE}
NOT_NULL = {"metric_name", "group_key", "row_count", "value_count", "value_sum", "non_finite"}


def tables(metadata: sa.MetaData) -> list[sa.Table]:
    """The table this revision adds, as it is at this revision."""
    columns = [
        sa.Column(name, TYPES.get(name, sa.Text()), nullable=name not in NOT_NULL, comment=text)
        for name, text in COMMENTS.items()
    ]
    primary_key = sa.PrimaryKeyConstraint(
        "metric_name", "group_key", name="pk_leaderboard_aggregates"
    )
    return [sa.Table("leaderboard_aggregates", metadata, *columns, primary_key)]


def _key(column: str) -> str:
    """``<length>:<text>``, or ``~`` for NULL: concatenated, one distinct text per group."""
    encoded = f"CAST(length({column}) AS TEXT) || ':' || {column}"
    return f"CASE WHEN {column} IS NULL THEN '~' ELSE {encoded} END"


def build_sql(dialect: str) -> str:
    """Every metric row's contribution, grouped: the whole aggregate in one statement.

    Groups first, then values: each benchmark row's group (its key and the
    seven columns) is worked out once and numbered, and the metric rows are
    grouped by (name, group number), which is cheaper than grouping millions of
    metric rows by the seven text columns and their encoded key directly, for
    the same table.
    """
    if dialect == "postgresql":
        finite = "m.metric_value < 'Infinity'::float8 AND m.metric_value > '-Infinity'::float8"
    else:  # SQLite keeps NaN as the text 'NaN', which compares above every number
        finite = "m.metric_value < 9e999 AND m.metric_value > -9e999"
    value = f"CASE WHEN {finite} THEN m.metric_value END"
    # Sums are kept times 2^-64 so that they cannot overflow; values below 2^-960
    # count as 0 there (PostgreSQL raises on a product underflowing to 0).
    scaled = f"CASE WHEN abs({value}) < {2.0**-960!r} THEN 0.0 ELSE {value} * {2.0**-64!r} END"
    sources: tuple[str, ...] = ("b.test_name", "r.model", "r.engine", "r.suite_name")
    sources += ("r.kitt_version", "h.gpu_model", "h.environment_type")
    key = " || ".join(_key(c) for c in sources)
    if dialect == "postgresql":
        key = f"md5({key})"  # a btree entry is bounded (2704 bytes); the encoding is not
    plain = ", ".join(KEYS)
    return f"""
INSERT INTO leaderboard_aggregates (metric_name, group_key, {plain},
    row_count, value_count, value_sum, value_min, value_max, non_finite)
WITH benchmark_groups AS MATERIALIZED (
    SELECT b.id AS benchmark_id, {key} AS group_key,
        {", ".join(f"{c} AS {k}" for c, k in zip(sources, KEYS, strict=True))},
        dense_rank() OVER (ORDER BY {key}) AS group_number
    FROM benchmarks b
    JOIN runs r ON r.id = b.run_id
    LEFT JOIN hardware h ON h.run_id = r.id
        AND h.id = (SELECT min(h2.id) FROM hardware h2 WHERE h2.run_id = r.id)
), sums AS MATERIALIZED (
    SELECT m.metric_name, g.group_number,
        count(*) AS row_count, count({value}) AS value_count,
        coalesce(sum({scaled}), 0.0) AS value_sum, min({value}) AS value_min,
        max({value}) AS value_max, count(m.metric_value) - count({value}) AS non_finite
    FROM metrics m
    JOIN benchmark_groups g ON g.benchmark_id = m.benchmark_id
    WHERE m.metric_name IS NOT NULL
    GROUP BY m.metric_name, g.group_number
), groups AS MATERIALIZED (
    SELECT DISTINCT group_number, group_key, {plain} FROM benchmark_groups
)
SELECT s.metric_name, g.group_key, {", ".join(f"g.{k}" for k in KEYS)},
    s.row_count, s.value_count, s.value_sum, s.value_min, s.value_max, s.non_finite
FROM sums s
JOIN groups g ON g.group_number = s.group_number
"""


contract = ops.RevisionContract(reference_schema_version=None, tables=tables)


def upgrade() -> None:
    ops.create_declared(contract)
    op.execute(build_sql(op.get_context().dialect.name))
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
