"""Revision 0008, beyond the reference: the event log refuses rewrites and chosen ids.

Adds no table and no column.

* SQLite: ``INSERT OR REPLACE`` / ``REPLACE INTO`` replace a row by deleting it
  without firing delete triggers, so revision 0003's triggers let them rewrite
  any event. ``events_no_rewrite`` (BEFORE INSERT) refuses an id that exists;
  ``events_ids_ascend`` (AFTER INSERT, so it sees the id SQLite assigned)
  refuses a row below the newest, which a reader already past it would never see.
* PostgreSQL: ``karr_append_events`` is the one way the application role
  appends (``karr-db grant`` gives it EXECUTE and no INSERT on ``events``): it
  takes the event-log lock, draws the ids from the sequence under it and
  notifies listeners, so that role can neither choose an id nor append outside
  the lock. It runs as its owner (SECURITY DEFINER) with a pinned
  ``search_path`` (the table's schema, then ``pg_temp`` last, so a temporary
  table cannot stand in for ``events``), and PUBLIC may not execute it.

Plain SQL through ``op.execute`` so that offline ``--sql`` mode renders it too.
"""

from karr_db.migrations import frozen, ops

revision: str = "0008"
down_revision: str | None = "0007"


#: The append function and its arguments (for GRANT EXECUTE).
POSTGRESQL_APPEND_FUNCTION = "karr_append_events"
POSTGRESQL_APPEND_SIGNATURE = f"{POSTGRESQL_APPEND_FUNCTION}(text[], text[], jsonb[], timestamptz)"

#: Trigger name -> its SQL.
_SQLITE = {
    "events_no_rewrite": """
    CREATE TRIGGER events_no_rewrite BEFORE INSERT ON events
    WHEN EXISTS (SELECT 1 FROM events WHERE id = NEW.id)
    BEGIN
        SELECT RAISE(ABORT, 'events are append-only: an existing event cannot be replaced');
    END
    """,
    "events_ids_ascend": """
    CREATE TRIGGER events_ids_ascend AFTER INSERT ON events
    WHEN EXISTS (SELECT 1 FROM events WHERE id > NEW.id)
    BEGIN
        SELECT RAISE(ABORT, 'events are append-only: a new event must come after the newest');
    END
    """,
}

_APPEND_BODY = f"""
DECLARE
    ids bigint[];
BEGIN
{frozen.APPEND_EVENTS_TAIL}"""

#: Built at upgrade time so the pinned search_path names the schema ``events`` is in.
_POSTGRESQL = [
    f"""
    DO $do$
    BEGIN
        EXECUTE format(
            $f$CREATE FUNCTION {POSTGRESQL_APPEND_FUNCTION}(
                event_types text[], source_ids text[], payloads jsonb[], created timestamptz
            ) RETURNS bigint[] LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = %I, pg_temp
            AS $body${_APPEND_BODY}$body$$f$,
            current_schema()
        );
    END
    $do$
    """,
    f"REVOKE ALL ON FUNCTION {POSTGRESQL_APPEND_SIGNATURE} FROM PUBLIC",
]

contract = ops.RevisionContract(
    reference_schema_version=None,
    triggers=tuple(ops.Trigger(name, "events", "sqlite") for name in _SQLITE),
    functions=(POSTGRESQL_APPEND_FUNCTION,),
    guards=(
        *(ops.SqliteTrigger(name, "events", sql.strip()) for name, sql in _SQLITE.items()),
        ops.PostgresFunction(
            POSTGRESQL_APPEND_FUNCTION,
            _APPEND_BODY,
            security_definer=True,
            search_path="{schema}, pg_temp",
        ),
    ),
)


def upgrade() -> None:
    frozen.execute_on_dialect(on_sqlite=list(_SQLITE.values()), on_postgresql=_POSTGRESQL)
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
