"""The append-only event log, and the one naming scheme of its event types.

Event types are ``<entity>.<what happened>`` in the past tense, lower case with
underscores: the entity is ``agent``, ``campaign``, ``quick_test``, ``run``,
``engine_profile`` or ``web_setting``; ``source_id`` is that entity's id (a web
setting's key); ``data`` is a small JSON object describing
the change (for status changes always ``{"from": ..., "to": ...}``). Every
repository appends its events in the same transaction as the change, so the
log never disagrees with the tables.

Gapless reading: a reader that polls "events after the last id I saw" must
never miss one. On SQLite writers are serialised by the database lock, so ids
become visible in id order. On PostgreSQL an id is drawn from a sequence before
its transaction commits, so a later id can become visible before an earlier
one; a reader that had already moved past the later id would then skip the
earlier one forever. To rule that out, every append first takes a
transaction-level advisory lock (:data:`EVENT_LOG_LOCK_KEY`), held until
commit: appending transactions then draw ids and commit one after another, and
PostgreSQL makes a commit visible before it releases the transaction's locks.
The price is that transactions that append are serialised from their first
append to their commit, which the dashboard's write rate affords easily.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Text,
    TypeDecorator,
    bindparam,
    cast,
    func,
    select,
    type_coerce,
)
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from karr_db.dialects import EVENT_LOG_LOCK_KEY, for_connection
from karr_db.documents import json_value_problems
from karr_db.errors import FieldError, InvalidQueryError, StorageError, ValidationError
from karr_db.limits import MAX_EVENT_DATA_BYTES, text_problem
from karr_db.models import Event
from karr_db.models.types import dumps_json, loads_json, utcnow
from karr_db.repositories._common import (
    DTO,
    Page,
    RowShape,
    check_limit,
    encode_cursor,
    found,
    page_rows,
    resume_after,
    row_builder,
)
from karr_db.repositories._validate import checked, fields, int32

__all__ = [
    "EVENTS_CHANNEL",
    "EVENT_LOG_LOCK_KEY",
    "EventDTO",
    "EventType",
    "EventsRepository",
    "wait_for_events",
]

#: PostgreSQL NOTIFY channel told the id of each appended event (at commit).
EVENTS_CHANNEL = "karr_events"
#: How often :func:`wait_for_events` polls, in seconds: SQLite, and PostgreSQL behind
#: a transaction-mode pooler or on a hot standby.
POLL_INTERVAL = 0.2


class EventType(StrEnum):
    """Every event type the layer writes (``run.*`` are written by the results repository)."""

    AGENT_REGISTERED = "agent.registered"
    AGENT_UPDATED = "agent.updated"
    AGENT_TOKEN_ROTATED = "agent.token_rotated"
    AGENT_STATUS_CHANGED = "agent.status_changed"
    AGENT_RETIRED = "agent.retired"
    AGENT_SETTINGS_CHANGED = "agent.settings_changed"
    AGENT_ENGINE_REPORTED = "agent.engine_reported"

    CAMPAIGN_CREATED = "campaign.created"
    CAMPAIGN_UPDATED = "campaign.updated"
    CAMPAIGN_LAUNCHED = "campaign.launched"
    CAMPAIGN_STARTED = "campaign.started"
    CAMPAIGN_PROGRESSED = "campaign.progressed"
    CAMPAIGN_COMPLETED = "campaign.completed"
    CAMPAIGN_FAILED = "campaign.failed"
    CAMPAIGN_CANCELLED = "campaign.cancelled"
    CAMPAIGN_DELETED = "campaign.deleted"
    CAMPAIGN_LOGGED = "campaign.logged"

    QUICK_TEST_DISPATCHED = "quick_test.dispatched"
    QUICK_TEST_CLAIMED = "quick_test.claimed"
    QUICK_TEST_STARTED = "quick_test.started"
    QUICK_TEST_COMPLETED = "quick_test.completed"
    QUICK_TEST_FAILED = "quick_test.failed"
    QUICK_TEST_CANCELLED = "quick_test.cancelled"
    QUICK_TEST_REQUEUED = "quick_test.requeued"
    QUICK_TEST_DELETED = "quick_test.deleted"
    QUICK_TEST_LOGGED = "quick_test.logged"

    ENGINE_PROFILE_CREATED = "engine_profile.created"
    ENGINE_PROFILE_UPDATED = "engine_profile.updated"
    ENGINE_PROFILE_DELETED = "engine_profile.deleted"

    WEB_SETTING_CHANGED = "web_setting.changed"
    WEB_SETTING_DELETED = "web_setting.deleted"

    RUN_SAVED = "run.saved"
    RUN_DELETED = "run.deleted"


class EventDTO(DTO):
    """One event with its payload parsed."""

    id: int
    event_type: str | None
    source_id: str | None
    data: Any = None
    created_at: datetime | None


_EVENT_COLUMNS = (Event.id, Event.event_type, Event.source_id, Event.data, Event.created_at)
#: How an event is read: its columns in the DTO's fields' order.
_SHAPE = RowShape(EventDTO, dict(zip(EventDTO.model_fields, _EVENT_COLUMNS, strict=True)))


@checked
class EventsRepository:
    """Appends and reads events; it has no update or delete on purpose."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def lock_log(self) -> None:
        """Take the append lock now; it is held until the transaction ends.

        :meth:`append` takes it anyway (its statement does). Every writing method of every
        repository (results included) calls this *before* its first read or
        row, so all of them take their locks in the same order (this one
        first) and none can deadlock against another; a caller combining its
        own writes with the repositories' in one transaction should call it
        first too. Taking it again in the same transaction is harmless: the
        lock is the transaction's, so nothing remembers whether it is held.

        PostgreSQL: the transaction-level advisory lock. SQLite: the database's
        write lock, taken by an INSERT that inserts nothing (waiting out the busy
        timeout), so that a DEFERRED transaction that reads before it writes
        cannot fail to upgrade its read lock.
        """
        connection = self.session.connection()
        for_connection(connection).lock_event_log(connection)

    def append(
        self, event_type: EventType | str, *, source_id: str | None = None, data: Any = None
    ) -> int:
        """Append one event in the caller's transaction and return its id."""
        return self.append_many([(event_type, source_id, data)])[0]

    def append_many(self, events: Iterable[tuple[EventType | str, str | None, Any]]) -> list[int]:
        """Append ``(event_type, source_id, data)`` events in one statement; their ids in order.

        One statement takes the log's lock, appends the rows and (PostgreSQL)
        NOTIFYs the newest id, instead of three round trips per event: a listener
        is only told "there is something after X" and reads everything after
        its own last id anyway.
        """
        created = utcnow()
        items = _checked_events(events)
        rows = [(str(t), s, None if d is None else dumps_json(d)) for t, s, d in items]
        large = [
            FieldError(f"{index}.data", f"is more than {MAX_EVENT_DATA_BYTES} bytes of JSON")
            for index, (_, _, text) in enumerate(rows)
            if text is not None
            and len(text) > MAX_EVENT_DATA_BYTES // 4
            and len(text.encode()) > MAX_EVENT_DATA_BYTES
        ]
        if large:
            raise ValidationError("event", large)
        if not rows:
            return []
        connection = self.session.connection()
        return for_connection(connection).append_events(connection, rows, created)

    def find(self, event_id: int) -> EventDTO | None:
        """The event with this id, or ``None``."""
        # Ids are PostgreSQL INTEGERs: a larger one is no event there, and must be
        # none on SQLite too (where the driver would accept it).
        fields("event", [("event_id", int32(event_id))])
        with _readable(f"reading event {event_id}"):
            row = self.session.execute(select(*_SHAPE.columns).where(Event.id == event_id)).first()
            return None if row is None else _SHAPE.one(row)

    def get(self, event_id: int) -> EventDTO:
        """The event with this id; :class:`NotFoundError` naming it when there is none."""
        return found("event", event_id, self.find(event_id))

    def last_id(self) -> int:
        """The newest visible id (0 for an empty log): where a new reader starts tailing."""
        return int(self.session.execute(select(func.coalesce(func.max(Event.id), 0))).scalar_one())

    def list(
        self,
        after_id: int = 0,
        *,
        event_types: builtins.list[str] | None = None,
        source_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[EventDTO]:
        """Events with ``id > after_id`` in id order, optionally filtered, one page.

        A tail passes the id of the last event it read (or :meth:`last_id`) as
        ``after_id``; ``cursor`` (a page's ``next_cursor``) resumes the same way,
        as in every ``list``. ``since``/``until`` bound ``created_at`` (inclusive,
        exclusive). Filters do not break resumption: ids only grow, so resuming
        after the last matching id can skip only events that do not match.
        """
        check_limit(limit)
        after_id = resume_after("event query", after_id, cursor)
        for name, bound in (("since", since), ("until", until)):
            if bound is not None and bound.utcoffset() is None:
                raise InvalidQueryError(f"{name} must be a timezone-aware datetime")
        connection = self.session.connection()
        params: dict[str, Any] = {"after_id": after_id, "limit": limit + 1}
        if event_types is not None:
            params["event_types"] = [str(t) for t in event_types]
        if source_id is not None:
            params["source_id"] = source_id
        if since is not None:
            params["since"] = since
        if until is not None:
            params["until"] = until
        stmt = _READ.where(*(_READ_FILTERS[name] for name in params if name in _READ_FILTERS))
        with _readable(f"reading events after id {after_id}"):
            rows, items = page_rows(connection.execute(stmt, params), limit, _event)
        more = len(rows) > limit
        return Page[EventDTO](
            items=items, next_cursor=encode_cursor([items[-1].id]) if more else None
        )


_event = row_builder(EventDTO)


@contextmanager
def _readable(operation: str) -> Iterator[None]:
    """Rows no event can be built from (written past the layer and its append
    function: a time outside the years 1-9999, JSON nested past the parser's
    limits) are the layer's :class:`StorageError`, never a Python or driver error."""
    try:
        yield
    except (RecursionError, ValueError, OverflowError, DataError) as exc:
        raise StorageError(
            operation,
            f"the event log holds a value that cannot be read as an event ({type(exc).__name__})",
        ) from None


class _JSONText(TypeDecorator[Any]):
    """Stored JSON text decoded by :func:`loads_json` (see :data:`_READ`)."""

    impl = Text
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return loads_json(value)


_events = Event.__table__.c
#: The statement of :meth:`EventsRepository.list` without its optional filters, built
#: once: table columns, not ORM entities, and every value a bound parameter. ``data`` is read
#: as text and decoded by :func:`loads_json` on both dialects, so PostgreSQL skips
#: psycopg's parse plus the marker walk over it for payloads that hold no marker.
_READ = (
    select(
        _events.id,
        _events.event_type,
        _events.source_id,
        type_coerce(cast(_events.data, Text), _JSONText()),  # a no-op CAST on SQLite
        _events.created_at,
    )
    .where(Event.id > bindparam("after_id"))
    .order_by(Event.id)
    .limit(bindparam("limit", type_=Integer()))
)
#: Each optional filter's condition, its value the parameter of the same name.
_READ_FILTERS: dict[str, ColumnElement[bool]] = {
    "event_types": Event.event_type.in_(bindparam("event_types", expanding=True)),
    "source_id": Event.source_id == bindparam("source_id"),
    "since": Event.created_at >= bindparam("since", type_=Event.created_at.type),
    "until": Event.created_at < bindparam("until", type_=Event.created_at.type),
}


def _checked_events(events: Any) -> list[tuple[str, str | None, Any]]:
    """The events to append, or one :class:`ValidationError` naming every bad field."""
    if isinstance(events, str | bytes) or not isinstance(events, Iterable):
        raise ValidationError("events", [FieldError("events", "must be a list of events")])
    items = list(events)
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        if not isinstance(item, tuple | list) or len(item) != 3:
            errors.append(FieldError(f"{index}", "must be (event_type, source_id, data)"))
            continue
        event_type, source_id, data = item
        problem = text_problem(event_type, indexed=True)
        if problem:
            errors.append(FieldError(f"{index}.event_type", problem))
        problem = None if source_id is None else text_problem(source_id, indexed=True)
        if problem:
            errors.append(FieldError(f"{index}.source_id", problem))
        if data is not None:
            errors.extend(json_value_problems(data, f"{index}.data"))
    if errors:
        raise ValidationError("event", errors)
    return [(item[0], item[1], item[2]) for item in items]


def _has_event_after(connection: Connection, after_id: int) -> bool:
    found = connection.execute(select(Event.id).where(Event.id > after_id).limit(1)).first()
    return found is not None


def wait_for_events(engine: Engine, after_id: int, *, timeout: float) -> bool:
    """Block until the log holds an event after ``after_id``, at most ``timeout``
    seconds; whether it does. Then read them with :meth:`EventsRepository.list`.

    PostgreSQL: LISTEN on :data:`EVENTS_CHANNEL` (on a connection of its own,
    outside any transaction), checking the log after LISTEN so that a commit in
    between is not missed. SQLite has no notifications, a transaction-mode pooler
    cannot carry a LISTEN and a hot standby gets no NOTIFY: there it polls.
    """
    after_id = resume_after("event wait", after_id, None)
    return for_connection(engine).wait_for_events(
        engine,
        lambda connection: _has_event_after(connection, after_id),
        channel=EVENTS_CHANNEL,
        timeout=timeout,
        poll_interval=POLL_INTERVAL,
    )
