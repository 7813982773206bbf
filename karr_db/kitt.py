"""KITT's result-store interface over karr_db, so KITT switches stores in one line.

KITT's storage code talks to an abstract ``ResultStore`` (:class:`ResultStore`
here is that interface as a :class:`typing.Protocol`; nothing of KITT is
imported). :class:`KarrResultStore` implements it structurally over the
repositories, with KITT's return shapes::

    store = KarrResultStore("sqlite:///results.db")  # or postgresql://..., or a Database

Every method runs in its own transaction (writes are retried on transient
failures, as :func:`karr_db.uow.run_transaction` does) and raises only
karr_db's errors (:mod:`karr_db.errors`): an unreachable or refusing server
is a :class:`~karr_db.errors.StorageError` (``ConnectionLostError`` when it
could not be reached), on construction too. A bad query or filter value is
also a :class:`ValueError` (:class:`KittQueryError`,
:class:`KittValidationError`), which KITT's results API answers with 400.

Where karr_db deliberately differs from KITT's own stores (none of these
weakens a guarantee to imitate the earlier behaviour):

- **Ids are derived from the content** (a UUID of the canonical document,
  36 characters), not random 16-hex strings; ids of adopted runs are kept.
- **Identical documents are stored once**: saving or importing the same
  document again returns the existing id, and :meth:`KarrResultStore.count`
  counts it once. :meth:`~KarrResultStore.import_directory` returns how many
  *new* runs it stored.
- **Timestamps in summaries are ISO 8601 in UTC with an offset**
  (``2026-02-12T10:00:00+00:00``); the documents themselves keep the text
  they were saved with.
- **get_result of an unknown id returns None** and never raises, whatever the
  id looks like (karr_db's own :meth:`ResultsRepository.get_document` raises
  :class:`NotFoundError`). The returned document gets an ``"id"`` key, as
  KITT's store adds; a document that carried its own ``"id"`` shows the run id
  there instead (the stored document is unchanged). Saving a document read
  back this way stores a new run: the added key changes its content.
- **query without order_by is newest first** (by the run's timestamp).
- **Unknown filter, order or group fields are refused** with
  :class:`KittQueryError` (an :class:`InvalidQueryError` and a
  :class:`ValueError`) rather than ignored or interpolated into SQL.
- **aggregate gives every group every ``<metric>_avg`` key**, ``None`` where
  the group has no finite value of it (KITT's SQLite store leaves the key
  out); NaN and infinities are left out of the averages.
- **A run a quick test points to is not deleted** silently:
  :meth:`~KarrResultStore.delete_result` raises :class:`StillReferencedError`
  unless ``detach=True``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from sqlalchemy import Connection, select
from sqlalchemy.engine import URL

from karr_db import migrations
from karr_db.database import Closing, Database
from karr_db.dialects import snapshot
from karr_db.engine import translated
from karr_db.errors import (
    FieldError,
    InvalidQueryError,
    NotFoundError,
    ValidationError,
)
from karr_db.importing import collect_files, export_run, import_files
from karr_db.limits import PAGE_LIMIT
from karr_db.models import Run
from karr_db.repositories.results import ORDER_FIELDS, ResultsRepository
from karr_db.repositories.results.dto import GroupCounts, ImportReport, RunSummary
from karr_db.uow import UnitOfWork, run_transaction

__all__ = [
    "AGGREGATE_FIELDS",
    "KarrResultStore",
    "KittQueryError",
    "KittValidationError",
    "ResultStore",
    "ResultStoreFiles",
    "migrate_or_close",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What :meth:`KarrResultStore.aggregate` can group by (KITT's run columns).
AGGREGATE_FIELDS = ("model", "engine", "suite_name")


@runtime_checkable
class ResultStore(Protocol):
    """KITT's storage interface, as its callers use it."""

    def save_result(self, result_data: dict[str, Any]) -> str: ...

    def get_result(self, result_id: str) -> dict[str, Any] | None: ...

    def query(
        self,
        filters: dict[str, Any] | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]: ...

    def list_results(self) -> list[dict[str, Any]]: ...

    def aggregate(
        self, group_by: str, metrics: list[str] | None = None
    ) -> list[dict[str, Any]]: ...

    def delete_result(self, result_id: str) -> bool: ...

    def count(self, filters: dict[str, Any] | None = None) -> int: ...

    def close(self) -> None: ...


@runtime_checkable
class ResultStoreFiles(ResultStore, Protocol):
    """What KITT's SQLite store offers besides: files in and out."""

    def import_json(self, path: str | Path) -> str: ...

    def import_directory(self, path: str | Path) -> int: ...

    def export_result(self, result_id: str, output_path: str | Path) -> Path | None: ...


class KittQueryError(InvalidQueryError, ValueError):
    """An unknown filter, order or group field, or a malformed page request.

    Also a :class:`ValueError`, which KITT's stores raise for an invalid query
    and its results API answers with 400.
    """


class KittValidationError(ValidationError, ValueError):
    """A query argument of the wrong type or beyond its bounds, named by field;
    also a :class:`ValueError`, for KITT's results API."""


@contextmanager
def _as_value_errors() -> Iterator[None]:
    """The layer's query and validation errors, raised as KITT's callers catch them."""
    try:
        yield
    except (KittQueryError, KittValidationError):
        raise
    except ValidationError as exc:
        raise KittValidationError(exc.what, exc.errors) from exc
    except InvalidQueryError as exc:
        raise KittQueryError(str(exc)) from exc


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _summary(run: RunSummary) -> dict[str, Any]:
    return {
        "id": run.id,
        "model": run.model,
        "engine": run.engine,
        "suite_name": run.suite_name,
        "timestamp": _iso(run.timestamp),
        "passed": run.passed,
    }


def _with_id(document: dict[str, Any], run_id: str) -> dict[str, Any]:
    return {**document, "id": run_id}


def _order(order_by: str | None) -> tuple[str, bool]:
    """KITT's ``"-field"`` (descending) or ``"field"``; newest first when ``None``."""
    if order_by is None:
        return "timestamp", True
    descending = order_by.startswith("-")
    field = order_by[1:] if descending else order_by
    if field not in ORDER_FIELDS:
        raise KittQueryError(f"unknown order field {field!r}; use one of {', '.join(ORDER_FIELDS)}")
    return field, descending


def migrate_or_close(database: Database, *, close: bool, operation: str) -> None:
    """Upgrade ``database`` to head (adopting an earlier one), answering with the
    layer's errors; on failure close it first when ``close`` (the caller opened it)."""
    try:
        with translated(operation):
            migrations.upgrade(database.engine)
    except BaseException:
        if close:
            database.close()
        raise


class KarrResultStore(Closing):
    """KITT's ``ResultStore`` (and the SQLite store's file operations) over karr_db.

    ``target`` is a database URL (``None``: ``KARR_DATABASE_URL`` or the default
    SQLite file) or a :class:`~karr_db.database.Database`, which the caller
    keeps owning. With ``migrate`` (the default) the database is adopted or
    migrated to head on construction, as KITT's store creates its tables.
    See the module docstring for where the behaviour differs from KITT's.
    """

    def __init__(self, target: str | URL | Database | None = None, *, migrate: bool = True) -> None:
        self._owns = not isinstance(target, Database)
        self.database = target if isinstance(target, Database) else Database(target)
        if migrate:
            migrate_or_close(self.database, close=self._owns, operation="opening the result store")

    # --- plumbing -------------------------------------------------------------

    def _write(self, work: Callable[[UnitOfWork], T], operation: str, *, idempotent: bool) -> T:
        self.database.require_current()  # the readiness check a unit of work makes
        return run_transaction(
            self.database.engine,
            work,
            immediate=True,
            idempotent=idempotent,
            operation=operation,
        )

    @contextmanager
    def _read(self) -> Iterator[ResultsRepository]:
        with self.database.unit_of_work(readonly=True) as uow:
            yield uow.results

    # --- the ResultStore interface --------------------------------------------

    def save_result(self, result_data: dict[str, Any]) -> str:
        """Store a document; its (content-derived) id, also when it was stored before."""
        saved = self._write(
            lambda uow: uow.results.save(result_data),
            "saving a result",
            idempotent=True,
        )
        return saved.run.id

    def get_result(self, result_id: str) -> dict[str, Any] | None:
        """The document with an ``"id"`` key; ``None`` for an unknown id."""
        with self._read() as results:
            try:
                document = results.get_document(result_id)
            except NotFoundError:
                return None
        return _with_id(document, result_id)

    def query(
        self,
        filters: dict[str, Any] | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Documents (each with ``"id"``) matching exact-match ``filters``.

        Filters: ``model``, ``engine``, ``suite_name``, ``passed`` (and the other
        fields of :class:`~karr_db.repositories.results.RunFilter`).
        ``order_by``: a run field, ``"-field"`` for descending; newest first by
        default. ``limit=None`` means all. Pages are read keyset-wise in
        chunks, and the documents of each chunk with one statement.
        """
        field, descending = _order(order_by)
        wrong = [
            FieldError(name, "must be an integer")
            for name, value in (("limit", 0 if limit is None else limit), ("offset", offset))
            if isinstance(value, bool) or not isinstance(value, int)
        ]
        if wrong:
            raise KittValidationError("query", wrong)
        if limit is not None and limit < 0:
            raise KittQueryError(f"limit must not be negative, got {limit}")
        if offset < 0:
            raise KittQueryError(f"offset must not be negative, got {offset}")
        out: list[dict[str, Any]] = []
        if limit == 0:
            return out
        with _as_value_errors(), self._read() as results:
            cursor: str | None = None
            while limit is None or len(out) < limit:
                want = PAGE_LIMIT if limit is None else min(PAGE_LIMIT, limit - len(out))
                with snapshot(results.connection):  # a run deleted in between: no hole
                    page = results.list(
                        filters,
                        order_by=field,
                        descending=descending,
                        limit=want,
                        cursor=cursor,
                        offset=offset if cursor is None else None,
                    )
                    ids = [run.id for run in page.items]
                    documents = _documents(results.connection, ids)
                out += [_with_id(documents[run_id], run_id) for run_id in ids]
                cursor = page.next_cursor
                if cursor is None:
                    break
        return out

    def list_results(self) -> list[dict[str, Any]]:
        """Summaries (id, model, engine, suite_name, timestamp, passed), newest first."""
        out: list[dict[str, Any]] = []
        with self._read() as results:
            cursor: str | None = None
            while True:
                page = results.list(limit=PAGE_LIMIT, cursor=cursor)
                out += [_summary(run) for run in page.items]
                cursor = page.next_cursor
                if cursor is None:
                    return out

    def aggregate(self, group_by: str, metrics: list[str] | None = None) -> list[dict[str, Any]]:
        """Per value of ``group_by``: the key, ``count`` (runs) and ``<metric>_avg``
        for each named metric (finite values only; ``None`` when a group has none).

        ``group_by`` is ``model``, ``engine`` or ``suite_name``; a metric is a
        dotted metric name as stored (``throughput.tokens_per_second``).
        Groups in key order, ``None`` last.
        """
        if metrics is not None and (
            not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics)
        ):
            raise KittValidationError(
                "aggregate", [FieldError("metrics", "must be a list of metric names")]
            )
        if group_by not in AGGREGATE_FIELDS:
            raise KittQueryError(
                f"unknown group field {group_by!r}; use one of {', '.join(AGGREGATE_FIELDS)}"
            )
        with _as_value_errors(), self._read() as results:
            stats = results.stats()
            groups: list[GroupCounts] = {
                "model": stats.by_model,
                "engine": stats.by_engine,
                "suite_name": stats.by_suite,
            }[group_by]
            averages = {
                metric: {
                    row.group[group_by]: row.avg
                    for row in results.leaderboard(metric, group_by=(group_by,))
                }
                for metric in metrics or []
            }
        return [
            {
                group_by: group.name,
                "count": group.runs,
                **{f"{metric}_avg": averages[metric].get(group.name) for metric in metrics or []},
            }
            for group in groups
        ]

    def delete_result(self, result_id: str, *, detach: bool = False) -> bool:
        """Delete a run; ``False`` if there was none.

        A run quick tests point to raises :class:`StillReferencedError` unless
        ``detach``, which clears their link in the same transaction.
        """

        def work(uow: UnitOfWork) -> bool:
            try:
                uow.results.delete(result_id, detach=detach)
            except NotFoundError:
                return False
            return True

        return self._write(work, "deleting a result", idempotent=False)

    def count(self, filters: dict[str, Any] | None = None) -> int:
        with _as_value_errors(), self._read() as results:
            return results.count(filters)

    def close(self) -> None:
        """Release the connections (of a database this store opened itself)."""
        if self._owns:
            self.database.close()

    # --- files ------------------------------------------------------------------

    def import_json(self, path: str | Path) -> str:
        """Store one result file; its id. A bad file raises :class:`ValidationError`."""
        source = Path(path)
        try:
            data = source.read_bytes()
        except FileNotFoundError:
            raise NotFoundError("file", str(source)) from None
        except OSError as exc:
            raise ValidationError(
                "result file", [FieldError("path", f"cannot read: {exc.strerror}")]
            ) from None
        saved = self._write(
            lambda uow: uow.results.save(data),
            "importing a file",
            idempotent=True,
        )
        return saved.run.id

    def import_report(self, path: str | Path) -> ImportReport:
        """Import every ``metrics.json`` below ``path``, file by file outcome."""
        root = Path(path)
        if not root.is_dir():
            raise NotFoundError("directory", str(root))
        return ImportReport(
            outcomes=list(import_files(self.database.engine, collect_files([root])))
        )

    def import_directory(self, path: str | Path) -> int:
        """Import a tree of ``metrics.json`` files; how many new runs it stored.

        Files already stored count as present, not new; invalid files are
        skipped and logged (:meth:`import_report` gives every outcome).
        """
        report = self.import_report(path)
        for outcome in report.rejected:
            log.warning("skipped %s: %s", outcome.path, outcome.reason)
        return len(report.imported)

    def export_result(self, result_id: str, output_path: str | Path) -> Path | None:
        """Write one run's document to ``output_path`` (atomically, parent
        directories created); the path written, or ``None`` for an unknown id."""
        with self.database.unit_of_work(readonly=True) as uow:
            try:
                return export_run(uow.session, result_id, output_path)
            except NotFoundError:
                return None
            except OSError as exc:
                raise ValidationError(
                    "export", [FieldError("output_path", f"cannot write: {exc.strerror}")]
                ) from None

    def __repr__(self) -> str:
        return f"KarrResultStore({self.database.url!r})"


def _documents(connection: Connection, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The documents of ``run_ids`` in one statement (a page is at most PAGE_LIMIT ids)."""
    if not run_ids:
        return {}
    rows = connection.execute(select(Run.id, Run.raw_json).where(Run.id.in_(run_ids))).all()
    found: dict[str, dict[str, Any]] = {row[0]: row[1] for row in rows}
    return found


def _conforms(store: KarrResultStore) -> ResultStoreFiles:
    """Never called: mypy proves here that the class implements KITT's interface
    structurally (a missing method or a changed signature fails ``make lint``)."""
    return store
