"""The two sides of every workload, behind one Protocol.

:class:`~bench.backends.project.Project` is karr_db's public API used as an
application would (one unit of work per user action);
:class:`~bench.backends.raw_sqlite.RawSqlite` and
:class:`~bench.backends.raw_postgres.RawPostgres` are the raw drivers with the
hand-written SQL of :mod:`bench.backends.sql`. The harness times and compares
them through :class:`Backend` only, so a workload cannot favour one side.
Answers differ in shape (typed DTOs against driver tuples); the answer checks
of :mod:`bench.harness` compare their contents.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class Backend(Protocol):
    """What each side offers the workloads."""

    def close(self) -> None: ...

    def save(self, doc: dict[str, Any]) -> str:
        """Store one document in its own transaction; its run id."""
        ...

    def save_many(self, docs: list[dict[str, Any]]) -> int:
        """Store documents in one transaction; how many were new."""
        ...

    def delete(self, run_id: str) -> None:
        """Delete one run with its rows, in its own transaction."""
        ...

    def append_events(self, count: int) -> None:
        """Append ``count`` events in one transaction."""
        ...

    def empty_unit(self, _: object = None) -> None:
        """The least each side does per user action (a unit of work / one statement)."""
        ...

    def latest(self, model: str, engine: str, limit: int = 50) -> list[Any]: ...

    def leaderboard(self, metric: str) -> list[Any]:
        """count/avg/min/max and the exact median by model and engine, from the rows."""
        ...

    def leaderboard_fast(self, metric: str) -> list[Any]:
        """count/avg/min/max by model and engine, from the leaderboard aggregate."""
        ...

    def history(self, metric: str, model: str, engine: str) -> list[Any]: ...

    def detail(self, run_id: str) -> Any: ...

    def count_passed(self, passed: bool) -> int: ...

    def tail(self, after: int, page: int = 1000) -> int:
        """Read every event after ``after``; how many."""
        ...

    def export(self, directory: Path) -> int: ...


def raw_backend(dialect: str, target: str) -> Any:
    """The raw baseline of ``dialect`` on ``target`` (a file path or a libpq URL)."""
    if dialect == "sqlite":
        from bench.backends.raw_sqlite import RawSqlite

        return RawSqlite(target)
    from bench.backends.raw_postgres import RawPostgres

    return RawPostgres(target)
