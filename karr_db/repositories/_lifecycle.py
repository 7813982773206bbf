"""What the operations repositories share: guarded status transitions,
newest-first keyset pages, and numbered pages with a total for dashboards."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from karr_db.errors import (
    InvalidQueryError,
    InvalidTransitionError,
    NotFoundError,
    PageLimitError,
)
from karr_db.limits import INT64_MAX
from karr_db.models import QuickTest, WebCampaign
from karr_db.models.types import parse_timestamp
from karr_db.repositories._common import (
    DTO,
    PAGE_LIMIT,
    Page,
    RowShape,
    check_limit,
    decode_cursor,
    encode_cursor,
    found,
)
from karr_db.repositories.events import EventsRepository

Row = TypeVar("Row", WebCampaign, QuickTest)
Out = TypeVar("Out", bound=DTO)

#: The most rows one page returns: the one public limit (an alias kept for one release).
MAX_PAGE_SIZE = PAGE_LIMIT


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


def _read_key(payload: Any) -> tuple[datetime | None, str]:
    created, key = payload
    if not isinstance(key, str) or not (created is None or isinstance(created, str)):
        raise ValueError("bad cursor fields")
    return parse_timestamp(created), key


def newest_first(
    session: Session,
    shape: RowShape[Out],
    model: type[Row],
    conditions: list[Any],
    *,
    limit: int,
    cursor: str | None,
) -> Page[Out]:
    """One page of the rows matching ``conditions``, newest first (``created_at``
    then ``id``, both descending, rows without a creation time last), resuming
    after ``cursor``.

    Keyset rather than offset pages, so that rows inserted while a client pages
    through neither repeat nor push others off a page.
    """
    check_limit(limit)
    query = select(*shape.columns).where(*conditions)
    if cursor is not None:
        created, key = decode_cursor(cursor, _read_key)
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
    items = shape.many(session.execute(query.limit(limit + 1)).all())
    if len(items) <= limit:
        return Page[Out](items=items)
    last: Any = items[limit - 1]
    created_at = last.created_at.isoformat() if last.created_at else None
    return Page[Out](items=items[:limit], next_cursor=encode_cursor([created_at, last.id]))


class AssignedWork(Generic[Row, Out]):
    """The reading side campaigns and quick tests share: rows with a status, an
    agent and a creation time, read by key, listed newest first and counted."""

    model: type[Row]
    entity: str
    #: The DTO's columns (see :class:`~karr_db.repositories._common.RowShape`).
    shape: RowShape[Out]

    def __init__(self, session: Session) -> None:
        self.session = session
        self._events = EventsRepository(session)

    def find(self, key: str) -> Out | None:
        """The row with this id, or ``None``."""
        row = self.session.execute(
            select(*self.shape.columns).where(self.model.id == key)
        ).one_or_none()
        return None if row is None else self.shape.one(row)

    def get(self, key: str) -> Out:
        """The row with this id; :class:`NotFoundError` naming it when there is none."""
        return found(self.entity, key, self.find(key))

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
        return newest_first(
            self.session,
            self.shape,
            self.model,
            self._filters(status, agent_id),
            limit=limit,
            cursor=cursor,
        )

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
        check_limit(page_size, name="page_size")
        if (page - 1) * page_size > INT64_MAX:  # an OFFSET no database can take
            raise PageLimitError("page", f"must be at most {INT64_MAX // page_size + 1}")
        query = (
            select(*self.shape.columns, func.count().over().label("total"))
            .where(*self._filters(status, agent_id))
            .order_by(self.model.created_at.desc().nulls_last(), self.model.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        rows = self.session.execute(query).all()
        total = int(rows[0][-1]) if rows else self.count(status=status, agent_id=agent_id)
        return NumberedPage[Out](
            items=[self.shape.one(r[:-1]) for r in rows],
            total=total,
            page=page,
            page_size=page_size,
        )

    def count(self, *, status: str | None = None, agent_id: str | None = None) -> int:
        query = select(func.count()).select_from(self.model)
        return int(self.session.scalar(query.where(*self._filters(status, agent_id))) or 0)
