"""The workloads: each times one user action on both sides, interleaved, on one dialect.

A workload is a function of a :class:`Context` (databases, sizes, the report);
:data:`STEPS` lists them in the order ``make bench`` runs them, by the names
``--only`` takes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.backends.project import Project
from bench.databases import Databases
from bench.report import Report, Row
from bench.sizes import Sizes
from karr_db.engine import make_engine


@dataclass
class Context:
    """What every workload needs: one dialect's databases, the sizes and the report."""

    db: Databases
    sizes: Sizes
    report: Report
    profile: set[str]

    @property
    def dialect(self) -> str:
        return self.db.dialect

    def row(
        self,
        workload: str,
        unit: str,
        project: float,
        baseline: float | None,
        kind: str,
        target: float | None = None,
        note: str = "",
    ) -> None:
        self.report.add(Row(self.dialect, workload, unit, project, baseline, kind, target, note))

    def project(self, url: str) -> Project:
        return Project(make_engine(url))

    def raw(self, url: str) -> Any:
        return self.db.raw(url)


def steps() -> list[tuple[str, Callable[[Context], None]]]:
    """The workloads in run order, by their ``--only`` names."""
    from bench.workloads import events, migrations, queries, writes

    return [
        ("save", writes.save),
        ("bulk", writes.bulk_save),
        ("import", writes.import_files),
        ("queries", queries.queries),
        ("events", events.events),
        ("migrations", migrations.migrations),
    ]
