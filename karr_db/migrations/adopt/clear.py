"""Removing what karr_db's revisions beyond an adopted version added, as their
contracts declare it, so that those revisions can run again on top of the stamp.

The earlier system never wrote these objects; they are found in a karr_db
database that lost its ``alembic_version`` table (its ``schema_version`` rows
still say 1 and 2). By the rule every revision follows, what karr_db adds
beyond the reference holds nothing that cannot be rebuilt from the reference
tables, which are kept row for row; the revisions rebuild it in the same
transaction. Only what a contract declares is removed: a trigger, index or
function someone else added is not karr_db's to drop (PostgreSQL's index
conformance still replaces indexes that duplicate a reference one's columns).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy import Connection

from karr_db.migrations.adopt._common import quote
from karr_db.migrations.ops import RevisionContract

__all__ = ["clear_karr_additions"]


def clear_karr_additions(
    connection: Connection, tables: list[sa.Table], later: Sequence[RevisionContract]
) -> None:
    """Drop what the ``later`` revisions' contracts declare (newest first), keeping
    the reference ``tables`` of the adopted version."""
    dialect = connection.dialect.name
    target = {t.name for t in tables}
    inspector = sa.inspect(connection)
    present = set(inspector.get_table_names())
    for contract in reversed(later):
        for trigger in contract.triggers_on(dialect):
            if trigger.table in present:
                on = "" if dialect == "sqlite" else f" ON {quote(connection, trigger.table)}"
                connection.exec_driver_sql(
                    f"DROP TRIGGER IF EXISTS {quote(connection, trigger.name)}{on}"
                )
        for index in contract.indexes_on(dialect):
            connection.exec_driver_sql(f"DROP INDEX IF EXISTS {quote(connection, index.name)}")
        for name in contract.functions_on(dialect):
            _drop_functions(connection, name)
        for name in [*reversed(contract.table_names()), *contract.other_tables]:
            if name in present and name not in target:
                connection.exec_driver_sql(f"DROP TABLE {quote(connection, name)}")
                present.discard(name)
        for column in contract.columns:
            if column.table in present and column.name in {
                c["name"] for c in inspector.get_columns(column.table)
            }:
                with_name = quote(connection, column.name)
                connection.exec_driver_sql(
                    f"ALTER TABLE {quote(connection, column.table)} DROP COLUMN {with_name}"
                )


def _drop_functions(connection: Connection, name: str) -> None:
    """Every overload of ``name`` in the current schema (the contract names, the
    catalogue knows the signatures)."""
    signatures = connection.execute(
        sa.text(
            "SELECT p.oid::regprocedure::text FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = current_schema() AND p.proname = :name"
        ),
        {"name": name},
    ).scalars()
    for signature in list(signatures):
        connection.exec_driver_sql(f"DROP FUNCTION {signature}")
