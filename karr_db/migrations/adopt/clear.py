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

A name is not proof of ownership: before anything is removed, every table of
that name must have the columns karr_db's revisions give it (those its revision
creates, plus at most those later revisions add), and no view may carry a name
karr_db creates. Otherwise adoption stops with an :class:`AdoptionError` naming
the table or view, and nothing is changed: data karr_db did not write is never
dropped or altered.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy import Connection

from karr_db.errors import AdoptionError
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
    refuse_foreign_namesakes(connection, tables, later)
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


def refuse_foreign_namesakes(
    connection: Connection, tables: list[sa.Table], later: Sequence[RevisionContract]
) -> None:
    """Stop adoption, before anything is written, at a table or view that only
    shares its name with one karr_db creates (see the module docstring)."""
    inspector = sa.inspect(connection)
    views = set(inspector.get_view_names())
    present = set(inspector.get_table_names())
    added: dict[str, set[str]] = {}
    for contract in later:
        for column in contract.columns:
            added.setdefault(column.table, set()).add(column.name)
    target = {t.name for t in tables}  # the adopted version's own: conformed, never dropped
    created: dict[str, set[str] | None] = {}
    for contract in later:
        for table in contract.table_objects():
            if table.name not in target:
                created[table.name] = {c.name for c in table.columns}
        for name in contract.other_tables:
            created.setdefault(name, None)
    for name, columns in created.items():
        if name in views:
            raise AdoptionError(
                f"view {name} has the name of a table karr_db creates; rename or drop the view",
                table=name,
            )
        if columns is None or name not in present:
            continue
        live = {c["name"] for c in inspector.get_columns(name)}
        foreign = sorted(live - columns - added.get(name, set()))
        missing = sorted(columns - live)
        if foreign or missing:
            detail = "; ".join(
                part
                for part in (
                    f"columns karr_db does not create: {', '.join(foreign)}" if foreign else "",
                    f"lacks karr_db's columns: {', '.join(missing)}" if missing else "",
                )
                if part
            )
            raise AdoptionError(
                f"table {name} has the name of a table karr_db creates but is not karr_db's "
                f"({detail}); rename it or move its data elsewhere first",
                table=name,
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
