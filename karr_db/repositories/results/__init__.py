"""KITT result documents: save, read, query, aggregate, compare and delete runs.

Every query is one SQL statement (full detail of a run is three, read in one
snapshot), filters and
order fields are whitelisted, and a save costs a handful of statements however
many metrics the document has (benchmarks inserted with one
``INSERT .. RETURNING``, metrics with one executemany).

NaN semantics of aggregates: NaN and the infinities are legal metric values
and round-trip, but the leaderboard leaves them out of ``count``, ``avg``,
``min``, ``max`` and ``median`` on both dialects (PostgreSQL would otherwise
let NaN win every ``max`` and SQLite would order its ``'NaN'`` text after all
numbers); each aggregate row counts them in ``non_finite`` instead. The median
is computed in the same statement with window functions, so both dialects
support it and agree with PostgreSQL's ``percentile_cont(0.5)``.

``metric_value`` keeps every value including NaN and the infinities, but not
the sign of zero (SQLite's REAL folds ``-0.0`` into ``0``); the document in
``raw_json`` keeps it.
"""

from __future__ import annotations

from karr_db.repositories.results.dto import (
    AggregateRow,
    BenchmarkDetail,
    Comparison,
    ComparisonRow,
    GroupCounts,
    HardwareInfo,
    ImportOutcome,
    ImportReport,
    MetricPoint,
    OutcomeCounts,
    ResultsDTO,
    RunDetail,
    RunStats,
    RunSummary,
    SaveResult,
)
from karr_db.repositories.results.filters import (
    GROUP_FIELDS,
    LEADERBOARD_ORDER_FIELDS,
    ORDER_FIELDS,
    ModelMatch,
    RunFilter,
)
from karr_db.repositories.results.repository import ResultsRepository

__all__ = [
    "GROUP_FIELDS",
    "LEADERBOARD_ORDER_FIELDS",
    "ORDER_FIELDS",
    "AggregateRow",
    "BenchmarkDetail",
    "Comparison",
    "ComparisonRow",
    "GroupCounts",
    "HardwareInfo",
    "ImportOutcome",
    "ImportReport",
    "MetricPoint",
    "ModelMatch",
    "OutcomeCounts",
    "ResultsDTO",
    "ResultsRepository",
    "RunDetail",
    "RunFilter",
    "RunStats",
    "RunSummary",
    "SaveResult",
]
