"""The event log: appending, reading in pages, and the database's append-only guard."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from karr_db.engine import make_engine
from karr_db.errors import InvalidQueryError, NotFoundError, StorageError
from karr_db.models.types import utcnow
from karr_db.repositories.events import EventsRepository, EventType, wait_for_events
from karr_db.uow import transaction


def test_append_then_read_in_id_order_with_parsed_data(session: Session) -> None:
    events = EventsRepository(session)
    before = utcnow()
    first = events.append("agent.registered", source_id="a1", data={"name": "gpu-box", "n": 1.5})
    second = events.append(EventType.RUN_SAVED, source_id="r1")
    assert second > first

    page = events.list(0)
    assert [e.id for e in page.items] == [first, second]
    assert page.items[0].event_type == "agent.registered"
    assert page.items[0].data == {"name": "gpu-box", "n": 1.5}
    assert page.items[1].event_type == "run.saved"
    assert page.items[1].data is None
    created = page.items[0].created_at
    assert created is not None
    assert created.utcoffset() == timedelta(0)
    assert before <= created <= utcnow()
    assert [e.id for e in page.items] == [first, second]
    assert not page.has_more
    assert events.last_id() == second
    assert events.get(first).source_id == "a1"


def test_append_keeps_the_signature_other_repositories_call(session: Session) -> None:
    event_id = EventsRepository(session).append("run.deleted", source_id="r9", data={"id": "r9"})
    assert EventsRepository(session).get(event_id).data == {"id": "r9"}


def test_pages_resume_after_the_last_id(session: Session) -> None:
    events = EventsRepository(session)
    ids = [events.append("test.tick", data={"i": i}) for i in range(7)]

    seen: list[int] = []
    while True:
        page = events.list(seen[-1] if seen else 0, limit=3)
        seen += [e.id for e in page.items]
        if not page.has_more:
            break
    assert seen == ids
    assert events.list(seen[-1]).items == []


def test_filters_by_type_source_and_time(session: Session) -> None:
    events = EventsRepository(session)
    a = events.append("agent.registered", source_id="a1")
    b = events.append("agent.retired", source_id="a1")
    c = events.append("agent.registered", source_id="a2")

    by_type = events.list(0, event_types=["agent.registered"])
    assert [e.id for e in by_type.items] == [a, c]
    by_source = events.list(0, source_id="a1")
    assert [e.id for e in by_source.items] == [a, b]
    both = events.list(a, event_types=["agent.registered"], source_id="a2")
    assert [e.id for e in both.items] == [c]

    now = utcnow()
    assert [e.id for e in events.list(0, until=now).items] == [a, b, c]
    assert events.list(0, since=now + timedelta(seconds=1)).items == []
    assert events.list(0, since=now - timedelta(hours=1), until=now).items != []


def test_bad_queries_are_domain_errors(session: Session) -> None:
    events = EventsRepository(session)
    with pytest.raises(InvalidQueryError):
        events.list(0, limit=0)
    with pytest.raises(InvalidQueryError):
        events.list(0, since=utcnow().replace(tzinfo=None))
    with pytest.raises(NotFoundError):
        events.get(424242)


def test_repository_offers_no_update_or_delete() -> None:
    public = {name for name in dir(EventsRepository) if not name.startswith("_")}
    assert public == {
        "append",
        "append_many",
        "find",
        "get",
        "last_id",
        "list",
        "lock_log",
    }


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET event_type = 'forged' WHERE id = :id",
        "DELETE FROM events WHERE id = :id",
    ],
)
def test_database_refuses_update_and_delete(session: Session, statement: str) -> None:
    events = EventsRepository(session)
    event_id = events.append("agent.registered", source_id="a1", data={"k": "v"})

    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text(statement), {"id": event_id})

    kept = events.get(event_id)
    assert (kept.event_type, kept.source_id, kept.data) == ("agent.registered", "a1", {"k": "v"})


def test_postgresql_refuses_truncate(migrated_postgres_url: str) -> None:
    # PostgreSQL alone: SQLite has no TRUNCATE.
    engine = make_engine(migrated_postgres_url)
    try:
        with transaction(engine) as uow:
            event_id = uow.events.append("agent.registered")
        with pytest.raises(StorageError, match="append-only"), transaction(engine) as uow:
            uow.session.execute(text("TRUNCATE events"))
        with transaction(engine) as uow:
            assert uow.events.get(event_id).id == event_id
    finally:
        engine.dispose()


def test_wait_for_events_wakes_on_a_committed_append(engine: Engine) -> None:
    with transaction(engine) as uow:
        first = uow.events.append("test.tick")
    assert wait_for_events(engine, 0, timeout=5)  # already there: no waiting
    assert not wait_for_events(engine, first, timeout=0.3)

    def append_later() -> None:
        time.sleep(0.3)
        with transaction(engine) as uow:
            uow.events.append("test.tick")

    appender = threading.Thread(target=append_later)
    appender.start()
    try:
        assert wait_for_events(engine, first, timeout=60)
    finally:
        appender.join()
    with transaction(engine) as uow:
        assert len(uow.events.list(first).items) == 1


def test_more_events_than_one_append_call_takes_all_go_in(session: Session) -> None:
    from karr_db.limits import MAX_EVENTS_PER_APPEND

    events = EventsRepository(session)
    count = MAX_EVENTS_PER_APPEND + 3
    ids = events.append_many([(EventType.AGENT_UPDATED, f"s{n}", None) for n in range(count)])
    assert len(ids) == count
    assert ids == sorted(ids)
    assert len(set(ids)) == count


def test_event_data_beyond_the_bound_is_refused_by_name(session: Session) -> None:
    from karr_db.errors import ValidationError
    from karr_db.limits import MAX_EVENT_DATA_BYTES

    events = EventsRepository(session)
    with pytest.raises(ValidationError) as raised:
        events.append_many(
            [
                (EventType.AGENT_UPDATED, "ok", {"x": 1}),
                (EventType.AGENT_UPDATED, "big", {"x": "é" * (MAX_EVENT_DATA_BYTES // 2)}),
            ]
        )
    assert raised.value.fields == ["1.data"]
    assert events.list(0).items == []


def test_an_unreadable_row_in_the_log_is_the_layer_s_error(session: Session) -> None:
    """A row written past the layer (deeper JSON than any parser reads): readers get a
    StorageError, never a RecursionError."""
    deep = "[" * 3000 + "]" * 3000
    events = EventsRepository(session)
    events.append(EventType.AGENT_UPDATED, source_id="before")
    session.execute(
        text("INSERT INTO events (event_type, data, created_at) VALUES ('t', :d, :c)"),
        {"d": deep, "c": utcnow()},
    )
    with pytest.raises(StorageError, match="cannot be read"):
        events.list(0)
    last = events.last_id()
    with pytest.raises(StorageError, match="cannot be read"):
        events.get(last)
