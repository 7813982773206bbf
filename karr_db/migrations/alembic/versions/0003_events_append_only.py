"""Revision 0003, beyond the reference: the event log becomes append-only in the database.

Adds no table and no column: it installs triggers that refuse
UPDATE and DELETE on ``events`` (and TRUNCATE on PostgreSQL), beyond the
reference, which only calls the log append-only. The repositories have no
update or delete for events; the triggers make sure nothing else does either,
so a reader resuming "after id X" can trust that what it saw stays true.

Plain SQL through ``op.execute`` so that offline ``--sql`` mode renders it too.
Note for later revisions: a SQLite "move and copy" batch operation on
``events`` drops these triggers; such a revision must create them again.
"""

from karr_db.migrations import frozen, ops

revision: str = "0003"
down_revision: str | None = "0002"


POSTGRESQL_FUNCTION = "karr_events_append_only"

#: Trigger name -> its SQL.
_SQLITE = {
    "events_no_update": """
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN
        SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed');
    END
    """,
    "events_no_delete": """
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN
        SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed');
    END
    """,
}

_BODY = """
    BEGIN
        RAISE EXCEPTION 'events are append-only: % is not allowed', TG_OP
            USING ERRCODE = 'restrict_violation';
    END
    """

_POSTGRESQL = [
    f"""
    CREATE FUNCTION {POSTGRESQL_FUNCTION}() RETURNS trigger
    LANGUAGE plpgsql AS $${_BODY}$$
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


contract = ops.RevisionContract(
    reference_schema_version=None,
    triggers=(
        *(ops.Trigger(name, "events", "sqlite") for name in _SQLITE),
        ops.Trigger("events_append_only", "events", "postgresql"),
        ops.Trigger("events_no_truncate", "events", "postgresql"),
    ),
    functions=(POSTGRESQL_FUNCTION,),
    # What ``check`` verifies: each guard's table, timing, statements, state and code.
    guards=(
        *(ops.SqliteTrigger(name, "events", sql.strip()) for name, sql in _SQLITE.items()),
        ops.PostgresFunction(POSTGRESQL_FUNCTION, _BODY),
        ops.PostgresTrigger(
            "events_append_only",
            "events",
            ops.TG_BEFORE | ops.TG_ROW | ops.TG_UPDATE | ops.TG_DELETE,
            POSTGRESQL_FUNCTION,
        ),
        ops.PostgresTrigger(
            "events_no_truncate", "events", ops.TG_BEFORE | ops.TG_TRUNCATE, POSTGRESQL_FUNCTION
        ),
    ),
)


def upgrade() -> None:
    frozen.execute_on_dialect(on_sqlite=list(_SQLITE.values()), on_postgresql=_POSTGRESQL)
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
