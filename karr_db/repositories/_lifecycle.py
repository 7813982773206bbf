"""What the operations repositories share: guarded status transitions, and
newest-first pages, by keyset or (for dashboards) numbered with a total."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from karr_db.errors import (
    InvalidQueryError,
    InvalidTransitionError,
    NotFoundError,
    PageLimitError,
)
from karr_db.limits import INT64_MAX
from karr_db.models import Agent, QuickTest, WebCampaign
from karr_db.models.types import parse_timestamp, utcnow
from karr_db.repositories._base import Keyed
from karr_db.repositories._common import (
    DTO,
    Page,
    RowShape,
    check_limit,
    decode_cursor,
    encode_cursor,
)
from karr_db.repositories.logs import delete_lines

Row = TypeVar("Row", WebCampaign, QuickTest)
Out = TypeVar("Out", bound=DTO)


@dataclass(frozen=True)
class Transition:
    """One verb of a state machine: the statuses it leaves, the one it enters, what
    else it changes and the event it appends. The repositories move rows by these
    rows, and ``docs/database.md`` renders them, so the code and the table cannot differ."""

    verb: str
    allowed_from: tuple[str, ...]
    to: str
    effect: str
    event: str


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
    more = len(items) > limit
    return Page[Out](
        items=items[:limit], next_cursor=_cursor_after(items[limit - 1]) if more else None
    )


def _cursor_after(last: Any) -> str:
    """The cursor of the rows after ``last`` in :func:`newest_first`'s order."""
    created_at = last.created_at.isoformat() if last.created_at else None
    return encode_cursor([created_at, last.id])


class AssignedWork(Keyed[Out], Generic[Row, Out]):
    """What campaigns and quick tests share: rows with a status, an agent and a
    creation time, moved by a state machine, listed newest first and counted."""

    model: type[Row]
    #: The state machine: its transitions by verb.
    transitions: Mapping[str, Transition]
    #: Whether a transition's event names the row's agent.
    events_name_agent = False

    def _require_agent(self, agent_id: str) -> None:
        if self.session.scalar(select(Agent.id).where(Agent.id == agent_id)) is None:
            raise NotFoundError("agent", agent_id)

    def fail(self, key: str, error: str) -> Out:
        """Move to ``failed`` (from a status the state machine allows) with the
        error; sets ``completed_at``."""
        return self._move(
            key, "fail", {"completed_at": utcnow(), "error": error}, extra={"error": error}
        )

    def cancel(self, key: str) -> Out:
        """Move to ``cancelled`` (from a status the state machine allows); sets
        ``completed_at``."""
        return self._move(key, "cancel", {"completed_at": utcnow()})

    def _move(
        self, key: str, verb: str, values: dict[str, Any], *, extra: dict[str, Any] | None = None
    ) -> Out:
        """Move a row by its state machine's ``verb`` (see :func:`transition`) and append
        the event saying from where to where, under the event log's lock."""
        rule = self.transitions[verb]
        self._events.lock_log()
        row, previous = transition(
            self.session,
            self.model,
            self.entity,
            key,
            # Plain text, not the enum: drivers adapt Enum members by name.
            allowed_from=[str(s) for s in rule.allowed_from],
            to=str(rule.to),
            values=values,
        )
        data: dict[str, Any] = {"from": previous, "to": str(rule.to)}
        if self.events_name_agent:
            data["agent_id"] = row.agent_id
        self._events.append(rule.event, source_id=key, data={**data, **(extra or {})})
        return self.get(key)

    def _delete_unless(
        self, key: str, held: Collection[str], log_model: Any, log_owner: str
    ) -> tuple[Out, int]:
        """Delete the row and its log lines unless its status is one of ``held``;
        the row as it was, and how many lines went (its events stay).

        The row is locked first and the DELETE is conditional (its status not in
        ``held``), so a row an agent takes concurrently is never deleted under
        it, nor its log: the loser gets :class:`InvalidTransitionError` and
        nothing is deleted.
        """
        self._events.lock_log()
        model = self.model
        row = self.session.execute(
            select(*self.shape.columns).where(model.id == key).with_for_update()
        ).one_or_none()
        if row is None:
            raise NotFoundError(self.entity, key)
        current: Any = self.shape.one(row)
        if current.status in held:
            raise InvalidTransitionError(self.entity, key, current.status, "deleted")
        with self.session.begin_nested():  # the lines come back if the row stays
            lines = delete_lines(self.session, log_model, log_owner, key)
            deleted = self.session.execute(
                delete(model)
                .where(model.id == key, or_(model.status.is_(None), model.status.not_in(held)))
                .returning(model.id)
                .execution_options(synchronize_session=False)
            ).one_or_none()
            if deleted is None:  # another writer that does not take the row lock
                raise InvalidTransitionError(self.entity, key, current.status, "deleted")
        return current, lines

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
        page: int | None = None,
    ) -> Page[Out]:
        """Newest first, one page at a time (pass ``next_cursor`` back).

        ``page`` (from 1) asks for a dashboard's numbered page instead: page
        ``page`` of ``limit`` rows, with the ``total`` of matching rows, from one
        statement (``count(*) OVER ()``), so the two agree even while others
        write; only a page past the end needs a second, counting one. Its
        ``next_cursor`` goes on by keyset. Offset pages shift when rows are
        inserted between two requests; cursors do not.
        """
        if page is None:
            return newest_first(
                self.session,
                self.shape,
                self.model,
                self._filters(status, agent_id),
                limit=limit,
                cursor=cursor,
            )
        if cursor is not None:
            raise InvalidQueryError("pass page or cursor, not both")
        if page < 1:
            raise InvalidQueryError(f"page must be 1 or more, got {page}")
        check_limit(limit)
        if (page - 1) * limit > INT64_MAX:  # an OFFSET no database can take
            raise PageLimitError("page", f"must be at most {INT64_MAX // limit + 1}")
        query = (
            select(*self.shape.columns, func.count().over().label("total"))
            .where(*self._filters(status, agent_id))
            .order_by(self.model.created_at.desc().nulls_last(), self.model.id.desc())
            .offset((page - 1) * limit)
            .limit(limit)
        )
        rows = self.session.execute(query).all()
        items = [self.shape.one(r[:-1]) for r in rows]
        total = int(rows[0][-1]) if rows else self.count(status=status, agent_id=agent_id)
        more = (page - 1) * limit + len(items) < total
        return Page[Out](
            items=items, next_cursor=_cursor_after(items[-1]) if more else None, total=total
        )

    def count(self, *, status: str | None = None, agent_id: str | None = None) -> int:
        query = select(func.count()).select_from(self.model)
        return int(self.session.scalar(query.where(*self._filters(status, agent_id))) or 0)
