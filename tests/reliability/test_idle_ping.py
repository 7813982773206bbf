"""Connections: pinged after idling (PostgreSQL), read-only and BEGIN without extra statements."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from karr_db import engine as engine_module
from karr_db.engine import make_engine
from karr_db.errors import StorageError
from karr_db.uow import transaction


def _statements(engine: sa.Engine) -> list[str]:
    sent: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _record(_c: Any, _cur: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    return sent


def _backend_pid(engine: sa.Engine) -> int:
    with transaction(engine) as uow:
        return int(uow.session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def test_a_connection_killed_while_idle_is_replaced_at_checkout(
    migrated_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every pooled connection counts as idle.
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE", 0.0)
    engine = make_engine(migrated_postgres_url, pool_size=1, max_overflow=0)
    admin = make_engine(migrated_postgres_url, poolclass=sa.pool.NullPool)
    try:
        pid = _backend_pid(engine)
        with admin.connect() as connection:
            assert connection.execute(sa.select(sa.func.pg_terminate_backend(pid))).scalar_one()
        assert _backend_pid(engine) != pid  # the ping found it dead: a new connection
    finally:
        engine.dispose()
        admin.dispose()


def test_a_connection_used_a_moment_ago_is_not_pinged(migrated_postgres_url: str) -> None:
    engine = make_engine(migrated_postgres_url, pool_size=1, max_overflow=0)
    try:
        _backend_pid(engine)
        sent = _statements(engine)
        with transaction(engine) as uow:
            uow.session.connection().exec_driver_sql("SELECT 2")
        assert sent == ["SELECT 2"]  # no SELECT 1 of a ping before it
    finally:
        engine.dispose()


@pytest.mark.parametrize("pre_ping", [None, True])
def test_read_only_units_of_work_send_no_extra_statement(
    migrated_postgres_url: str, pre_ping: bool | None
) -> None:
    """A read-only unit of work sends its statement alone, outside any transaction
    (autocommit: one round trip, no BEGIN or COMMIT); a repository write in it is
    refused before any SQL; the next unit of work on the same pooled connection is
    a transaction again (also with SQLAlchemy's own pre-ping, whose SELECT 1 leaves
    a transaction open)."""
    from psycopg.pq import TransactionStatus

    options = {} if pre_ping is None else {"pool_pre_ping": True}
    engine = make_engine(migrated_postgres_url, pool_size=1, max_overflow=0, **options)
    try:
        sent = _statements(engine)
        with transaction(engine, readonly=True) as uow:
            assert uow.connection.exec_driver_sql("SELECT 2").scalar_one() == 2
            driver = uow.connection.connection.driver_connection
            assert driver is not None
            assert driver.info.transaction_status == TransactionStatus.IDLE  # no BEGIN
        assert sent == ["SELECT 2"]
        with (
            pytest.raises(StorageError, match="read-only"),
            transaction(engine, readonly=True) as uow,
        ):
            uow.events.append("agent.updated", source_id="refused")
        assert sent == ["SELECT 2"]
        with transaction(engine) as uow:
            uow.session.connection().exec_driver_sql("SELECT 3")
            driver = uow.session.connection().connection.driver_connection
            assert driver is not None
            assert driver.info.transaction_status == TransactionStatus.INTRANS
    finally:
        engine.dispose()


def test_a_busy_sqlite_begin_is_a_concurrency_error(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN goes straight to the driver; a write lock it cannot get within the busy
    timeout still leaves as the layer's retryable error, not sqlite3's."""
    import sqlite3

    from karr_db.errors import ConcurrencyError

    monkeypatch.setattr(engine_module, "SQLITE_BUSY_TIMEOUT", 0.05)
    path = tmp_path / "busy.db"
    engine = make_engine(f"sqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(ConcurrencyError), transaction(engine, immediate=True):
            pass
        holder.execute("ROLLBACK")
        with transaction(engine, immediate=True) as uow:  # the pooled connection is fine
            assert uow.session.connection().exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        holder.close()
        engine.dispose()
