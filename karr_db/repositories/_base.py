"""What every repository that writes events holds, written once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Executable, Insert, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from karr_db.errors import KarrError
from karr_db.repositories._common import (
    Page,
    RowShape,
    check_limit,
    decode_cursor,
    encode_cursor,
    found,
)
from karr_db.repositories.events import EventsRepository, EventType

D = TypeVar("D", bound=BaseModel)


class Repository:
    """A session, and the events repository its changes append to."""

    def __init__(self, session: Session, *, events: EventsRepository) -> None:
        """``events``: the events repository of the same session (the unit of work's),
        to which this repository's changes append; given, never built here."""
        self.session = session
        self._events = events

    def _one(self, shape: RowShape[D], *where: Any) -> D | None:
        """The DTO of the one row ``where`` selects, or ``None``: every ``find``."""
        row = self.session.execute(select(*shape.columns).where(*where)).one_or_none()
        return None if row is None else shape.one(row)

    def _refused(self, statement: Executable) -> bool:
        """Run ``statement`` in a savepoint; ``True`` when a constraint refused it
        (the savepoint is rolled back and the caller's transaction goes on), so
        the caller can name what was in the way."""
        try:
            with self.session.begin_nested():
                self.session.execute(statement)
        except IntegrityError:
            return True
        return False

    def _page_by(
        self,
        shape: RowShape[D],
        keys: Sequence[InstrumentedAttribute[str]],
        *where: Any,
        limit: int,
        cursor: str | None,
    ) -> Page[D]:
        """One page of the rows ``where`` selects, in the order of the text columns
        ``keys`` (unique together, and fields of the DTO by the same names),
        resuming after ``cursor``: the keyset listing of most repositories."""
        check_limit(limit)
        query = select(*shape.columns).where(*where)
        if cursor is not None:
            after = decode_cursor(cursor, lambda payload: _texts(payload, len(keys)))
            query = query.where(tuple_(*keys) > tuple_(*after))
        rows = self.session.execute(query.order_by(*keys).limit(limit + 1)).all()
        items = shape.many(rows[:limit])
        if len(rows) <= limit:
            return Page[D](items=items)
        last = [getattr(items[-1], key.key) for key in keys]
        return Page[D](items=items, next_cursor=encode_cursor(last))


class Keyed(Repository, Generic[D]):
    """Rows read by their ``id`` and created under a new one: what campaigns, quick
    tests, agents and engine profiles share."""

    #: The mapped class; its ``id`` column is the key.
    model: Any
    #: What :class:`~karr_db.errors.NotFoundError` calls a row.
    entity: str
    #: The DTO's columns (see :class:`~karr_db.repositories._common.RowShape`).
    shape: RowShape[D]

    def find(self, key: str) -> D | None:
        """The row with this id, or ``None``."""
        return self._one(self.shape, self.model.id == key)

    def get(self, key: str) -> D:
        """The row with this id; :class:`NotFoundError` naming it when there is none."""
        return found(self.entity, key, self.find(key))

    def _create(
        self, statement: Insert, event: EventType, data: dict[str, Any], refused: KarrError
    ) -> D:
        """Insert the one row of ``statement`` under a new id and append its creation
        ``event``; the new row. ``refused`` is raised when a constraint refuses the
        row: what the caller checked under the event log's lock was changed by a
        writer that does not take it."""
        key = str(uuid.uuid4())
        if self._refused(statement.values(id=key)):
            raise refused
        self._events.append(event, source_id=key, data=data)
        return self.get(key)


class Named(Keyed[D]):
    """Rows with a unique ``name`` besides their id (agents, engine profiles)."""

    def find_by_name(self, name: str) -> D | None:
        """The row of this name, or ``None``."""
        return self._one(self.shape, self.model.name == name)

    def get_by_name(self, name: str) -> D:
        """The row of this name; :class:`NotFoundError` naming it when there is none."""
        return found(self.entity, name, self.find_by_name(name))


def _texts(payload: Any, count: int) -> list[str]:
    """A cursor's ``count`` key values, which must all be text."""
    if not isinstance(payload, list) or len(payload) != count:
        raise ValueError("bad cursor fields")
    if not all(isinstance(value, str) for value in payload):
        raise ValueError("bad cursor fields")
    return payload
