"""The project side of every workload: karr_db's public API, used as an application would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from karr_db.importing import export_runs, import_paths
from karr_db.limits import PAGE_LIMIT
from karr_db.uow import transaction


class Project:
    """One engine and the operations the workloads time: writes in a unit of work
    that takes SQLite's write lock at BEGIN, reads in a read-only one, as the
    README tells applications to (``Database.unit_of_work``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def close(self) -> None:
        self.engine.dispose()

    def save(self, doc: dict[str, Any]) -> str:
        with transaction(self.engine, immediate=True) as unit:
            return unit.results.save(doc).run.id

    def save_many(self, docs: list[dict[str, Any]]) -> int:
        with transaction(self.engine, immediate=True) as unit:
            return sum(r.created for r in unit.results.save_many(docs))

    def delete(self, run_id: str) -> None:
        with transaction(self.engine, immediate=True) as unit:
            unit.results.delete(run_id)

    def import_files(self, paths: list[Path]) -> int:
        report = import_paths(self.engine, paths)
        return sum(o.status == "imported" for o in report.outcomes)

    def append_event(self) -> None:
        with transaction(self.engine, immediate=True) as unit:
            unit.events.append("agent.updated", source_id="agent-1", data={"n": 1})

    def append_events(self, count: int) -> None:
        with transaction(self.engine, immediate=True) as unit:
            unit.events.append_many(("agent.updated", f"agent-{i}", {"n": i}) for i in range(count))

    def empty_unit(self, _: object = None) -> None:
        """A read-only unit of work that sends no statement: the floor under every read."""
        with transaction(self.engine, readonly=True):
            pass

    def one_statement(self, _: object = None) -> None:
        """The same with one trivial statement executed through SQLAlchemy, as every
        repository statement is: the instrument for the cost of one execution."""
        with transaction(self.engine, readonly=True) as unit:
            unit.connection.exec_driver_sql("SELECT 1").all()

    def statements(self, call: Callable[[Any], object], arg: Any) -> int:
        """How many statements one call sends through the engine (BEGIN and COMMIT,
        which go to the driver directly, not counted)."""
        sent = 0

        def count(*_: Any) -> None:
            nonlocal sent
            sent += 1

        event.listen(self.engine, "before_cursor_execute", count)
        try:
            call(arg)
        finally:
            event.remove(self.engine, "before_cursor_execute", count)
        return sent

    def latest(self, model: str, engine: str, limit: int = 50) -> list[Any]:
        with transaction(self.engine, readonly=True) as unit:
            return unit.results.list({"model": model, "engine": engine}, limit=limit).items

    def leaderboard(self, metric: str) -> list[Any]:
        with transaction(self.engine, readonly=True) as unit:
            return unit.results.leaderboard(metric, group_by=("model", "engine"))

    def leaderboard_fast(self, metric: str) -> list[Any]:
        """count/avg/min/max without the median: answered from the leaderboard aggregate."""
        with transaction(self.engine, readonly=True) as unit:
            return unit.results.leaderboard(metric, group_by=("model", "engine"), median=False)

    def history(self, metric: str, model: str, engine: str) -> list[Any]:
        with transaction(self.engine, readonly=True) as unit:
            page = unit.results.metric_history(metric, model=model, engine=engine, limit=PAGE_LIMIT)
            return page.items

    def detail(self, run_id: str) -> Any:
        with transaction(self.engine, readonly=True) as unit:
            return unit.results.get(run_id)

    def count_passed(self, passed: bool) -> int:
        with transaction(self.engine, readonly=True) as unit:
            return unit.results.count({"passed": passed})

    def tail(self, after: int, page: int = 1000) -> int:
        read = 0
        while True:
            with transaction(self.engine, readonly=True) as unit:
                batch = unit.events.list(after, limit=page)
            read += len(batch.items)
            if not batch.has_more:
                return read
            after = batch.items[-1].id

    def export(self, directory: Path) -> int:
        with transaction(self.engine, readonly=True) as unit:
            return export_runs(unit.session, directory)
