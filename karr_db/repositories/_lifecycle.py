"""What the operations repositories share: guarded status transitions,
newest-first keyset pages, and numbered pages with a total for dashboards."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.orm import Session

from karr_db.errors import InvalidQueryError, InvalidTransitionError, NotFoundError
from karr_db.models import QuickTest, WebCampaign
from karr_db.models.types import parse_timestamp
from karr_db.repositories.base import DTO, Page
from karr_db.repositories.events import EventsRepository

Row = TypeVar("Row", WebCampaign, QuickTest)
Out = TypeVar("Out", bound=DTO)

#: The most rows one page returns.
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class Transition:
    """One verb of a state machine: the statuses it leaves, the one it enters, what
    else it changes. The repositories move rows by these rows, and
    ``docs/database.md`` renders them, so the code and the table cannot differ."""

    verb: str
    allowed_from: tuple[str, ...]
    to: str
    effect: str


class NumberedPage(DTO, Generic[Out]):
    """Page ``page`` (from 1) of ``page_size`` rows, and how many rows match in all.

    For a dashboard's "page 3 of 12". Offset pages shift when rows are
    inserted between two requests; the keyset :meth:`AssignedWork.list` does not.
    """

    items: list[Out]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return -(-self.total // self.page_size)


def transition(
    session: Session,
    model: type[Row],
    entity: str,
    key: str,
    *,
    allowed_from: Collection[str],
    to: str,
    values: dict[str, Any] | None = None,
    where: tuple[Any, ...] = (),
) -> tuple[Row, str]:
    """Move a row to ``to`` only if its status is one of ``allowed_from``.

    One conditional UPDATE (``WHERE status IN (...)``): of two processes racing
    over the same row, the database lets exactly one match, so the loser gets
    :class:`InvalidTransitionError` rather than silently overwriting. Returns
    the updated row and the status it came from.
    """
    # Read the current status under the row lock the UPDATE below would take,
    # so the event can say where the row came from.
    current = session.execute(
        select(model.status).where(model.id == key).with_for_update()
    ).one_or_none()
    if current is None:
        raise NotFoundError(entity, key)
    previous = current[0]
    statement = (
        update(model)
        .where(model.id == key, model.status.in_(list(allowed_from)), *where)
        .values(status=to, **(values or {}))
        .returning(model)
        .execution_options(populate_existing=True, synchronize_session=False)
    )
    row = session.scalars(statement).one_or_none()
    if row is None:
        raise InvalidTransitionError(entity, key, previous, to)
    return row, previous or ""


def _encode_cursor(created_at: datetime | None, key: str) -> str:
    raw = json.dumps([created_at.isoformat() if created_at else None, key])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime | None, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, key = json.loads(raw)
        if not isinstance(key, str) or not (created is None or isinstance(created, str)):
            raise ValueError(cursor)
        return parse_timestamp(created), key
    except (ValueError, TypeError, binascii.Error, OverflowError, RecursionError):
        # Overflow: a forged timestamp at the calendar's edge; recursion: forged nesting.
        raise InvalidQueryError("malformed cursor") from None


def newest_first(
    session: Session, query: Select[Row], model: type[Row], *, limit: int, cursor: str | None
) -> tuple[list[Row], str | None]:
    """One page of ``query`` ordered newest first (``created_at`` then ``id``, both
    descending, rows without a creation time last), resuming after ``cursor``.

    Keyset rather than offset pages, so that rows inserted while a client pages
    through neither repeat nor push others off a page.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidQueryError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
    if cursor is not None:
        created, key = _decode_cursor(cursor)
        if created is None:
            query = query.where(model.created_at.is_(None), model.id < key)
        else:
            query = query.where(
                or_(
                    model.created_at < created,
                    and_(model.created_at == created, model.id < key),
                    model.created_at.is_(None),
                )
            )
    query = query.order_by(model.created_at.desc().nulls_last(), model.id.desc())
    rows = list(session.scalars(query.limit(limit + 1)).all())
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], _encode_cursor(last.created_at, last.id)


class AssignedWork(Generic[Row, Out]):
    """The reading side campaigns and quick tests share: rows with a status, an
    agent and a creation time, read by key, listed newest first and counted."""

    model: type[Row]
    entity: str

    def __init__(self, session: Session) -> None:
        self.session = session
        self._events = EventsRepository(session)

    def _dto(self, row: Row) -> Out:
        raise NotImplementedError

    def get(self, key: str) -> Out:
        row = self.session.scalars(
            select(self.model).where(self.model.id == key).execution_options(populate_existing=True)
        ).one_or_none()
        if row is None:
            raise NotFoundError(self.entity, key)
        return self._dto(row)

    def _filters(self, status: str | None, agent_id: str | None) -> list[Any]:
        clauses: list[Any] = []
        if status is not None:
            clauses.append(self.model.status == status)
        if agent_id is not None:
            clauses.append(self.model.agent_id == agent_id)
        return clauses

    def list(
        self,
        *,
        status: str | None = None,
        agent_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Out]:
        """Newest first, one page at a time (pass ``next_cursor`` back)."""
        query = select(self.model).where(*self._filters(status, agent_id))
        rows, next_cursor = newest_first(
            self.session, query, self.model, limit=limit, cursor=cursor
        )
        return Page[Out](items=[self._dto(r) for r in rows], next_cursor=next_cursor)

    def list_page(
        self,
        *,
        page: int = 1,
        page_size: int = 50,
        status: str | None = None,
        agent_id: str | None = None,
    ) -> NumberedPage[Out]:
        """Newest first, by page number, with the total.

        The rows and the total come from one statement (``count(*) OVER ()``),
        so they agree even while others write; only a page past the end needs
        a second, counting one.
        """
        if page < 1:
            raise InvalidQueryError(f"page must be 1 or more, got {page}")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidQueryError(
                f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}"
            )
        query = (
            select(self.model, func.count().over().label("total"))
            .where(*self._filters(status, agent_id))
            .order_by(self.model.created_at.desc().nulls_last(), self.model.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
            .execution_options(populate_existing=True)
        )
        rows = self.session.execute(query).all()
        total = int(rows[0].total) if rows else self.count(status=status, agent_id=agent_id)
        return NumberedPage[Out](
            items=[self._dto(r[0]) for r in rows], total=total, page=page, page_size=page_size
        )

    def count(self, *, status: str | None = None, agent_id: str | None = None) -> int:
        query = select(func.count()).select_from(self.model)
        return int(self.session.scalar(query.where(*self._filters(status, agent_id))) or 0)
