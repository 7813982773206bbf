"""Revision 0003, beyond the reference: the event log becomes append-only in the database.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Written by hand. Adds no table and no column: it installs triggers that refuse
UPDATE and DELETE on ``events`` (and TRUNCATE on PostgreSQL), beyond the
reference, which only calls the log append-only. The repositories have no
update or delete for events; the triggers make sure nothing else does either,
so a reader resuming "after id X" can trust that what it saw stays true.

Plain SQL through ``op.execute`` so that offline ``--sql`` mode renders it too.
Note for later revisions: a SQLite "move and copy" batch operation on
``events`` drops these triggers; such a revision must create them again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from karr_db.migrations.runner import record_schema_version, refuse_downgrade

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Beyond the reference: records nothing in ``schema_version`` (``alembic_version`` tracks it).
karr_schema_version: int | None = None

#: Names ``check`` can look for (``sqlite_master`` / ``pg_trigger``).
SQLITE_TRIGGERS = ("events_no_update", "events_no_delete")
POSTGRESQL_TRIGGERS = ("events_append_only", "events_no_truncate")
POSTGRESQL_FUNCTION = "karr_events_append_only"

_SQLITE = [
    """
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN
        SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed');
    END
    """,
    """
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN
        SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed');
    END
    """,
]

_POSTGRESQL = [
    f"""
    CREATE FUNCTION {POSTGRESQL_FUNCTION}() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'events are append-only: % is not allowed', TG_OP
            USING ERRCODE = 'restrict_violation';
    END
    $$
    """,
    f"""
    CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION {POSTGRESQL_FUNCTION}()
    """,
    f"""
    CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION {POSTGRESQL_FUNCTION}()
    """,
]


def tables(metadata: sa.MetaData) -> list[sa.Table]:
    """This revision adds no tables."""
    return []


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    statements = _POSTGRESQL if dialect == "postgresql" else _SQLITE
    for statement in statements:
        op.execute(statement.strip())
    record_schema_version(karr_schema_version)


def downgrade() -> None:
    refuse_downgrade()
