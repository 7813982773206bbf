"""What every KITT service shares: a database, one transaction per call, KITT's shapes.

KITT's services share one ``sqlite3`` connection and a write lock; here each
call is its own unit of work on the database's pool (writes take the write lock
at BEGIN on SQLite and are re-run on transient conflicts, as
:func:`karr_db.uow.run_transaction` does), so services may be called from any
number of threads and processes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.engine import URL

from karr_db.database import Closing, Database
from karr_db.errors import (
    AlreadyExistsError,
    CounterLimitError,
    FieldError,
    InvalidQueryError,
    InvalidTokenError,
    InvalidTransitionError,
    KarrError,
    NotFoundError,
    StillReferencedError,
    ValidationError,
)
from karr_db.kitt import migrate_or_close
from karr_db.uow import UnitOfWork, run_transaction

T = TypeVar("T")
D = TypeVar("D", bound=BaseModel)

#: KITT's ``event_bus.publish(event_type, source_id, data)``, called after a
#: change commits so KITT's live pages update as they did.
Publish = Callable[[str, str, dict[str, Any]], None]


#: The HTTP status KITT's API answers each of the layer's errors with, most
#: specific first; anything else (the database unreachable or not ready) is 503.
HTTP_STATUSES: tuple[tuple[type[KarrError], int], ...] = (
    (ValidationError, 400),
    (InvalidQueryError, 400),
    (InvalidTokenError, 403),
    (NotFoundError, 404),
    (AlreadyExistsError, 409),
    (InvalidTransitionError, 409),
    (StillReferencedError, 409),
    (CounterLimitError, 409),
)


def http_status(error: KarrError) -> int:
    """The status for a Flask error handler: ``return {"error": str(e)}, http_status(e)``."""
    for kind, status in HTTP_STATUSES:
        if isinstance(error, kind):
            return status
    return 503


def whole(what: str, field: str, value: object) -> int:
    """``value`` if it is an integer (not a bool); else :class:`ValidationError`
    naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(what, [FieldError(field, "must be an integer")])
    return value


def text(what: str, field: str, value: object) -> str:
    """``value`` if it is a string; else :class:`ValidationError` naming ``field``."""
    if not isinstance(value, str):
        raise ValidationError(what, [FieldError(field, "must be a string")])
    return value


def required(what: str, data: object, *names: str) -> dict[str, Any]:
    """``data`` if it is a dict holding every one of ``names``; else
    :class:`ValidationError` naming what is missing."""
    if not isinstance(data, dict):
        raise ValidationError(what, [FieldError("<input>", "must be a JSON object")])
    missing = [FieldError(name, "is required") for name in names if name not in data]
    if missing:
        raise ValidationError(what, missing)
    return data


def iso(value: datetime | None) -> str | None:
    """Times as KITT's pages read them: ISO 8601 text (here UTC, with its offset)."""
    return value.isoformat() if value is not None else None


def api_dict(dto: BaseModel) -> dict[str, Any]:
    """A DTO as KITT's API returns its row: every field by name, times as :func:`iso` text."""
    return {name: iso(value) if isinstance(value, datetime) else value for name, value in dto}


def tags_text(tags: list[str]) -> str:
    """Agent tags the way KITT hands them out: a JSON array as text."""
    return json.dumps(tags)


class Service(Closing):
    """A database a service reads and writes, one transaction per call.

    ``target`` is a :class:`Database` (the caller keeps owning it), a URL, or
    ``None`` for ``KARR_DATABASE_URL`` / the default SQLite file. A database
    opened from a URL is migrated (or adopted) to head first when
    ``migrate``, as KITT's app migrates its database when it starts.
    ``publish`` receives the events KITT's own services publish.
    """

    def __init__(
        self,
        target: str | URL | Database | None = None,
        *,
        publish: Publish | None = None,
        migrate: bool = True,
    ) -> None:
        self._owns = not isinstance(target, Database)
        self.database = target if isinstance(target, Database) else Database(target)
        self._publish = publish
        if self._owns and migrate:
            migrate_or_close(self.database, close=True, operation="opening the database")

    def _write(self, work: Callable[[UnitOfWork], T], operation: str) -> T:
        self.database.require_current()  # the readiness check a unit of work makes
        return run_transaction(self.database.engine, work, immediate=True, operation=operation)

    def _changed(
        self,
        change: Callable[[UnitOfWork], object],
        operation: str,
        *,
        refused: tuple[type[KarrError], ...] = (NotFoundError,),
    ) -> bool:
        """Make ``change`` in a writing unit of work and answer as KITT does: ``False``
        when the repository refuses it with one of ``refused`` (no such row), else ``True``."""

        def work(uow: UnitOfWork) -> bool:
            try:
                change(uow)
            except refused:
                return False
            return True

        return self._write(work, operation)

    @contextmanager
    def _read(self, *, fresh: bool = False) -> Iterator[UnitOfWork]:
        """A read-only unit of work: on the replica, if there is one, unless
        ``fresh`` (token checks, which a lagging standby must not answer)."""
        with self.database.unit_of_work(readonly=True, fresh=fresh) as uow:
            yield uow

    def _found(
        self, find: Callable[[UnitOfWork], D | None], as_dict: Callable[[D], dict[str, Any]]
    ) -> dict[str, Any] | None:
        """KITT's answer to a lookup: the row as its dict, ``None`` when there is none."""
        with self._read() as uow:
            row = find(uow)
        return None if row is None else as_dict(row)

    def _emit(self, event_type: str, source_id: str, data: dict[str, Any]) -> None:
        if self._publish is not None:
            self._publish(event_type, source_id, data)

    def close(self) -> None:
        """Release the connections of a database this service opened itself."""
        if self._owns:
            self.database.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.database.url!r})"
