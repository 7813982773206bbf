"""The event log stays append-only against its owner's mistakes, and ``check`` reports
a guard that no longer guards: it verifies what each trigger does, not its name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from karr_db import migrations
from karr_db.engine import make_engine
from karr_db.errors import StorageError
from karr_db.uow import transaction


@pytest.fixture
def logged(migrated_url: str) -> Iterator[Engine]:
    """A database at head whose log holds two events."""
    engine = make_engine(migrated_url)
    with transaction(engine) as uow:
        uow.events.append_many([("test.a", "s", {"n": 1}), ("test.b", "s", None)])
    yield engine
    engine.dispose()


def _events(engine: Engine) -> list[tuple[int, str | None]]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT id, event_type FROM events ORDER BY id")
        return [(int(r[0]), r[1]) for r in rows]


REWRITES = {
    "sqlite": [
        "INSERT OR REPLACE INTO events (id, event_type, source_id, data, created_at) "
        "VALUES (1, 'forged', 's', NULL, '2026-01-01 00:00:00.000000+00:00')",
        "REPLACE INTO events (id, event_type) VALUES (1, 'forged')",
        "INSERT INTO events (id, event_type) VALUES (1, 'forged') "
        "ON CONFLICT (id) DO UPDATE SET event_type = 'forged'",
        "UPDATE OR REPLACE events SET id = 1 WHERE id = 2",
        "INSERT OR IGNORE INTO events (id, event_type) VALUES (1, 'forged')",
    ],
    "postgresql": [
        "INSERT INTO events (id, event_type) VALUES (1, 'forged') "
        "ON CONFLICT (id) DO UPDATE SET event_type = 'forged'",
    ],
}


@pytest.mark.parametrize(
    "index",
    [
        pytest.param(i, marks=[] if i < len(REWRITES["postgresql"]) else pytest.mark.sqlite_only)
        for i in range(len(REWRITES["sqlite"]))
    ],
)
def test_an_existing_event_cannot_be_rewritten(logged: Engine, backend: str, index: int) -> None:
    before = _events(logged)
    with pytest.raises(StorageError, match="append-only"), transaction(logged) as uow:
        uow.session.execute(sa.text(REWRITES[backend][index]))
    assert _events(logged) == before


@pytest.mark.sqlite_only  # PostgreSQL: the application role cannot choose ids at all
def test_an_event_below_the_newest_cannot_be_slipped_in_on_sqlite(
    logged: Engine, backend: str
) -> None:
    """A reader past id 2 would never see an id 1 that appears later (SQLite has no roles:
    the owner is everyone, so the database itself refuses it)."""
    with transaction(logged) as uow:
        uow.session.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'events'"))
    with pytest.raises(StorageError, match="append-only"), transaction(logged) as uow:
        uow.session.execute(sa.text("INSERT INTO events (id, event_type) VALUES (0, 'forged')"))
    with transaction(logged) as uow:  # the repository still appends after the newest
        assert uow.events.append("test.c") == 3


def _messages(engine: Engine) -> list[str]:
    return [f.message for f in migrations.check(engine)]


SQLITE_TAMPERING = {
    "same-name no-op trigger": [
        "DROP TRIGGER events_no_update",
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT 1; END",
    ],
    "trigger moved to another table": [
        "CREATE TABLE decoy (id INTEGER PRIMARY KEY)",
        "DROP TRIGGER events_no_delete",
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON decoy BEGIN "
        "SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed'); END",
    ],
    "timing changed": [
        "DROP TRIGGER events_no_update",
        "CREATE TRIGGER events_no_update AFTER INSERT ON events BEGIN "
        "SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed'); END",
    ],
    "guarded only when never true": [
        "DROP TRIGGER events_no_delete",
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events WHEN 0 BEGIN "
        "SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed'); END",
    ],
    "rewrite guard dropped": ["DROP TRIGGER events_no_rewrite"],
}
POSTGRESQL_TAMPERING = {
    "replica-only trigger": ["ALTER TABLE events ENABLE REPLICA TRIGGER events_append_only"],
    "disabled trigger": ["ALTER TABLE events DISABLE TRIGGER events_no_truncate"],
    "no-op function body": [
        "CREATE OR REPLACE FUNCTION karr_events_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
    ],
    "trigger moved to another table": [
        "CREATE TABLE decoy (id int)",
        "DROP TRIGGER events_append_only ON events",
        "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON decoy "
        "FOR EACH ROW EXECUTE FUNCTION karr_events_append_only()",
    ],
    "guarded only when never true": [
        "DROP TRIGGER events_append_only ON events",
        "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
        "FOR EACH ROW WHEN (false) EXECUTE FUNCTION karr_events_append_only()",
    ],
    "fewer events": [
        "DROP TRIGGER events_append_only ON events",
        "CREATE TRIGGER events_append_only BEFORE DELETE ON events "
        "FOR EACH ROW EXECUTE FUNCTION karr_events_append_only()",
    ],
    "append function that takes no lock": [
        "CREATE OR REPLACE FUNCTION karr_append_events(event_types text[], source_ids text[], "
        "payloads jsonb[], created timestamptz) RETURNS bigint[] LANGUAGE sql SECURITY DEFINER "
        "AS $$ SELECT ARRAY[]::bigint[] $$"
    ],
}
TAMPERING = [
    pytest.param("sqlite", name, marks=pytest.mark.sqlite_only, id=name)
    for name in SQLITE_TAMPERING
] + [
    pytest.param("postgresql", name, marks=pytest.mark.postgres_only, id=name)
    for name in POSTGRESQL_TAMPERING
]


@pytest.mark.parametrize(("dialect", "tampering"), TAMPERING)
def test_check_reports_a_guard_that_no_longer_guards(
    logged: Engine, backend: str, dialect: str, tampering: str
) -> None:
    assert backend == dialect
    assert _messages(logged) == []
    statements = (SQLITE_TAMPERING if dialect == "sqlite" else POSTGRESQL_TAMPERING)[tampering]
    with logged.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)
    found = [m for m in _messages(logged) if "is not karr_db's" not in m]  # the decoy table
    assert found, f"check is clean after: {tampering}"
    assert all("event-log guard" in m for m in found), found
