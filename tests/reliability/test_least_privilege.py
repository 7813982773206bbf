"""The application role of karr_db.security: the repositories work, the schema and the
event log cannot be changed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from karr_db import Database, migrations
from karr_db.errors import StorageError
from karr_db.repositories.campaigns import RunOutcome
from karr_db.repositories.events import wait_for_events
from karr_db.security import GrantError, grant, grant_statements
from karr_db.uow import transaction
from tests.reliability.reliability_helpers import check_store, load_samples, variant
from tests.support.workers import engine_for

pytestmark = pytest.mark.reliability

FORBIDDEN = [
    "CREATE TABLE public.intruder (id int)",
    "CREATE SCHEMA intruder",
    "ALTER TABLE runs ADD COLUMN intruder text",
    "ALTER TABLE events DISABLE TRIGGER USER",
    "DROP TABLE metrics",
    "DROP TRIGGER events_append_only ON events",
    "CREATE INDEX intruder ON runs (model)",
    "TRUNCATE events",
    "TRUNCATE runs",
    "UPDATE events SET event_type = 'forged'",
    "DELETE FROM events",
    "INSERT INTO alembic_version VALUES ('9999')",
    "UPDATE schema_version SET version = 99",
    "CREATE FUNCTION public.intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    # A chosen id: a tailer would jump to it and never see the real events below.
    "INSERT INTO events (id, event_type) VALUES (1000000, 'forged')",
    # An append outside the event-log lock (ids visible out of order).
    "INSERT INTO events (event_type) VALUES ('unlocked')",
    "SELECT setval(pg_get_serial_sequence('events', 'id'), 1000000)",
    "CREATE TEMP TABLE intruder (id int)",
    "CREATE FUNCTION pg_temp.intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
]


@pytest.fixture
def app_role(migrated_postgres_url: str) -> Iterator[tuple[str, str]]:
    """A fresh login role with the application grants, and the URL connecting as it."""
    role = f"karr_app_{uuid.uuid4().hex[:10]}"
    with engine_for(migrated_postgres_url) as owner:
        with owner.begin() as connection:
            connection.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
        try:
            grant(owner, role)
            url = make_url(migrated_postgres_url).set(username=role, password=None)
            yield role, url.render_as_string(hide_password=False)
        finally:
            _drop_role(owner, role)


def _drop_role(owner: sa.Engine, role: str) -> None:
    """End the role's sessions and remove it with everything it owns."""
    with owner.begin() as connection:
        connection.exec_driver_sql(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
        )
        connection.exec_driver_sql(f'DROP OWNED BY "{role}"')
        connection.exec_driver_sql(f'DROP ROLE "{role}"')


def test_repositories_work_under_the_application_role(
    app_role: tuple[str, str], samples_dir: Path, figures: Any
) -> None:
    role, url = app_role
    samples = load_samples(samples_dir)
    with engine_for(url) as engine:
        with transaction(engine) as uow:
            assert uow.session.scalar(sa.text("SELECT current_user")) == role
            results = uow.results
            saved = [results.save(variant(samples, f"app-{n}")) for n in range(3)]
            results.delete(saved[0].run.id)
            agents = uow.agents
            credentials = agents.register("app-agent", tags=["gpu"])
            agent_id = credentials.agent.id
            rotated = agents.rotate_token(agent_id)
            agents.authenticate(agent_id, rotated.token.get_secret_value())
            agents.heartbeat(agent_id)
            quick = uow.quick_tests
            test_id = quick.dispatch(
                agent_id, model_path="m", engine_name="vllm", benchmark_name="b"
            ).id
            campaigns = uow.campaigns
            campaign = campaigns.create("nightly", agent_id=agent_id, total_runs=2)
            campaigns.start(campaign.id)
        with transaction(engine) as uow:
            claimed = uow.quick_tests.claim_next(agent_id)
            assert claimed is not None
            assert claimed.id == test_id
            uow.quick_tests.start(test_id)
            uow.quick_tests.complete(test_id, result_id=saved[1].run.id)
            uow.campaigns.record_run(campaign.id, RunOutcome.SUCCEEDED)
            last = uow.events.last_id()
        assert wait_for_events(engine, 0, timeout=5)  # LISTEN needs no grant
        assert last > 0
        status = migrations.status(url)
        assert status.pending == []
        check = check_store(engine)
        assert check.runs == 2
    figures["role"] = "application role (random name)"
    figures["operations"] = 17
    figures["rows_checked"] = check.rows


def test_the_application_role_cannot_change_schema_or_rewrite_events(
    app_role: tuple[str, str], migrated_postgres_url: str, figures: Any
) -> None:
    _role, url = app_role
    with engine_for(url) as engine:
        with transaction(engine) as uow:
            uow.events.append("agent.registered", source_id="a1")
        refused = 0
        for statement in FORBIDDEN:
            with pytest.raises(StorageError) as caught, transaction(engine) as uow:
                uow.session.execute(sa.text(statement))
            message = str(caught.value)
            assert "permission denied" in message or "must be owner" in message, message
            refused += 1
        with transaction(engine) as uow:
            kept = uow.events.list(0)
        assert [(e.event_type, e.source_id) for e in kept.items] == [("agent.registered", "a1")]
    # The owner still sees the schema exactly as migrated.
    assert migrations.check(migrated_postgres_url) == []
    figures["statements_refused"] = refused


def test_grant_statements_quote_the_role_and_refuse_sqlite(sqlite_databases: Any) -> None:
    statements = grant_statements('odd"; DROP TABLE runs; --')
    assert all('"odd""; DROP TABLE runs; --"' in s for s in statements if "PUBLIC" not in s)
    with pytest.raises(GrantError, match="PostgreSQL"):
        grant(sqlite_databases.migrated(), "anyone")


def test_grant_refuses_the_owner(migrated_postgres_url: str) -> None:
    owner = make_url(migrated_postgres_url).username or "postgres"
    with pytest.raises(GrantError, match="owns"):
        grant(migrated_postgres_url, owner)


def test_grant_command_is_idempotent(app_role: tuple[str, str], migrated_postgres_url: str) -> None:
    from tests.support.cli import cli

    role, url = app_role
    for _ in range(2):
        result = cli("grant", role, "--database", migrated_postgres_url)
        assert result.exit_code == 0, result.output
        assert role in result.stdout
    with engine_for(url) as engine:
        with transaction(engine) as uow:
            assert uow.results.count() == 0
        with pytest.raises(StorageError, match="permission denied"), transaction(engine) as uow:
            uow.session.execute(sa.text("DELETE FROM events"))
    printed = cli("grant", role, "--sql")
    assert printed.exit_code == 0
    assert printed.stdout.count(";\n") == len(grant_statements(role))


#: Calls of the append function the application role can make, each of which would
#: store an event no reader can read, or do unbounded work under the lock.
_DEEP = "[" * 3000 + "]" * 3000
HOSTILE_APPENDS = {
    "infinity": "ARRAY['t'], ARRAY[NULL]::text[], ARRAY[NULL]::jsonb[], 'infinity'",
    "year 0": "ARRAY['t'], ARRAY[NULL]::text[], ARRAY[NULL]::jsonb[], '0001-01-01 00:00+01'",
    "year 10000": "ARRAY['t'], ARRAY[NULL]::text[], ARRAY[NULL]::jsonb[], '9999-12-31 23:30-01'",
    "NULL time": "ARRAY['t'], ARRAY[NULL]::text[], ARRAY[NULL]::jsonb[], NULL",
    "NULL type": "ARRAY[NULL]::text[], ARRAY[NULL]::text[], ARRAY[NULL]::jsonb[], now()",
    "NULL arrays": "NULL, NULL, NULL, now()",
    "unequal lengths": "ARRAY['a', 'b'], ARRAY[NULL]::text[], ARRAY[NULL]::jsonb[], now()",
    "two dimensions": "ARRAY[['a'], ['b']], ARRAY[[NULL], [NULL]]::text[], "
    "ARRAY[[NULL], [NULL]]::jsonb[], now()",
    "too many": "array_fill('t'::text, ARRAY[10001]), array_fill(NULL::text, ARRAY[10001]), "
    "array_fill(NULL::jsonb, ARRAY[10001]), now()",
    "long type": "ARRAY[repeat('t', 1001)], ARRAY[NULL]::text[], ARRAY[NULL]::jsonb[], now()",
    "too deep": f"ARRAY['t'], ARRAY[NULL]::text[], ARRAY['{_DEEP}'::jsonb], now()",
    "too large": "ARRAY['t'], ARRAY[NULL]::text[], ARRAY[to_jsonb(repeat('x', 2000001))], now()",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_APPENDS))
def test_the_append_function_refuses_what_no_reader_could_read(
    app_role: tuple[str, str], case: str
) -> None:
    _, url = app_role
    with engine_for(url) as engine:
        with pytest.raises(sa.exc.DBAPIError) as raised, engine.begin() as connection:
            connection.exec_driver_sql(f"SELECT karr_append_events({HOSTILE_APPENDS[case]})")
        assert getattr(raised.value.orig, "sqlstate", None) in ("22023", "22008"), raised.value
        with transaction(engine, readonly=True) as unit:
            assert unit.events.list(0).items == []
        with transaction(engine) as unit:
            unit.events.append("agent.updated", source_id="a", data={"deep": [[[1]]]})
        with transaction(engine, readonly=True) as unit:
            assert [e.source_id for e in unit.events.list(0).items] == ["a"]


def test_a_log_holding_what_no_reader_can_read_is_the_layer_s_error(
    migrated_postgres_url: str,
) -> None:
    """Rows written past the function and the triggers (by the owner): readers get a
    StorageError."""
    with engine_for(migrated_postgres_url) as engine:
        for values in (
            f"('t', '{_DEEP}'::jsonb, now())",
            "('t', NULL, 'infinity')",
            "('t', NULL, '0001-01-01 00:00+01')",
        ):
            with engine.begin() as connection:
                # Past every guard (revision 13's range trigger included), as an owner can.
                connection.exec_driver_sql("ALTER TABLE events DISABLE TRIGGER USER")
                connection.exec_driver_sql("DELETE FROM events")
                connection.exec_driver_sql(
                    f"INSERT INTO events (event_type, data, created_at) VALUES {values}"
                )
                connection.exec_driver_sql("ALTER TABLE events ENABLE TRIGGER USER")
            with (
                pytest.raises(StorageError, match="cannot be read"),
                transaction(engine, readonly=True) as unit,
            ):
                unit.events.list(0)


def test_the_application_role_opens_units_of_work_through_the_readiness_check(
    app_role: tuple[str, str], samples_dir: Path
) -> None:
    """``Database`` checks readiness first, which reads the derivation queue: the
    grants let the role read it, so its readers and writers get in."""
    _role, url = app_role
    samples = load_samples(samples_dir)
    with Database(url) as db:
        assert db.status().derivation_pending == 0
        with db.unit_of_work() as uow:
            uow.results.save(variant(samples, "through-readiness"))
        with db.unit_of_work(readonly=True) as uow:
            assert uow.results.count() == 1


def test_grant_works_on_a_database_without_the_derivation_queue(
    migrated_postgres_url: str,
) -> None:
    """Databases that passed revision 0007 before it declared the queue have none."""
    role = f"karr_app_{uuid.uuid4().hex[:10]}"
    with engine_for(migrated_postgres_url) as owner:
        with owner.begin() as connection:
            connection.exec_driver_sql("DROP TABLE karr_pending_derivation")
            connection.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
        try:
            statements = grant(owner, role)
            assert not any("karr_pending_derivation" in s for s in statements)
            url = make_url(migrated_postgres_url).set(username=role, password=None)
            with (
                Database(url.render_as_string(hide_password=False)) as db,
                db.unit_of_work(readonly=True) as uow,
            ):
                assert uow.results.count() == 0
        finally:
            _drop_role(owner, role)
