"""The statement behind :meth:`ResultsRepository.list`: limit first, hardware after.

A page shows each run's hardware headline (its first hardware row). Joining
that before the ``LIMIT`` made PostgreSQL hash-join a sequential scan of every
hardware row and run the correlated ``min(hardware.id)`` once per matching run,
then sort them all, a cost growing with history. Here the page
of run ids is chosen from ``runs`` alone (walking
``idx_runs_model_engine_latest``, revision 0009, beyond the reference, in the
query's own order), and only its ``limit`` rows look up their headline: a
``LATERAL`` index lookup on PostgreSQL, the correlated ``min(id)`` on SQLite
(which has no ``LATERAL`` and already plans that as an index lookup per row).

A filter on a hardware column (GPU, environment) must see the headline before
the limit, so those pages keep the join inside.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, select, true

from karr_db.models import Hardware, Run
from karr_db.repositories.results.filters import first_hardware_id, with_hardware

__all__ = ["HEADLINE", "RUN_COLUMNS", "page_statement"]

RUN_COLUMNS = (
    Run.id,
    Run.model,
    Run.engine,
    Run.suite_name,
    Run.timestamp,
    Run.passed,
    Run.total_benchmarks,
    Run.passed_count,
    Run.failed_count,
    Run.total_time_seconds,
    Run.kitt_version,
    Run.created_at,
)
HEADLINE = (Hardware.gpu_model, Hardware.gpu_count, Hardware.environment_type)


def _ordering(column: Any, run_id: Any, descending: bool) -> list[Any]:
    """(value NULLS LAST, id) in the page's direction: the keyset order of the cursors."""
    order = column.desc() if descending else column.asc()
    return [order.nulls_last(), run_id.desc() if descending else run_id.asc()]


def page_statement(
    conditions: list[ColumnElement[bool]],
    column: Any,
    descending: bool,
    limit: Any,
    offset: Any | None,
    *,
    hardware_filtered: bool,
    lateral: bool,
) -> Select[*tuple[Any, ...]]:
    """One page of run summaries, ``limit`` rows at most, in the cursor order.

    The columns are the summary's, named as :class:`RunSummary`'s fields (the
    order value is read from its own column, not selected twice). ``limit`` and
    ``offset`` (``None``: none) are numbers or bound parameters.
    """
    if hardware_filtered:
        stmt = (
            with_hardware(select(*RUN_COLUMNS, *HEADLINE).select_from(Run))
            .where(*conditions)
            .order_by(*_ordering(column, Run.id, descending))
            .limit(limit)
        )
        return stmt.offset(offset) if offset is not None else stmt
    inner = (
        select(*RUN_COLUMNS)
        .where(*conditions)
        .order_by(*_ordering(column, Run.id, descending))
        .limit(limit)
    )
    if offset is not None:
        inner = inner.offset(offset)
    page = inner.subquery("page")
    if lateral:
        headline = (
            select(*HEADLINE)
            .where(Hardware.run_id == page.c.id)
            .order_by(Hardware.id)
            .limit(1)
            .lateral("headline")
        )
        joined = page.outerjoin(headline, true())
        hardware_columns: list[Any] = [headline.c[c.key] for c in HEADLINE]
    else:
        joined = page.outerjoin(
            Hardware,
            and_(Hardware.run_id == page.c.id, Hardware.id == first_hardware_id(page.c.id, page)),
        )
        hardware_columns = list(HEADLINE)
    return (
        select(*page.c, *hardware_columns)
        .select_from(joined)
        .order_by(*_ordering(page.c[column.key], page.c.id, descending))
    )
