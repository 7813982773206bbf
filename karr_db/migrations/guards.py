"""What the event log's guards must be, and the check that they still are.

Revisions that install a guard (0003, 0006, 0008) describe it with these
classes in their contract's ``guards`` (:mod:`karr_db.migrations.ops`);
``check`` compares the live database with every description of the revisions
the database has applied. It compares what a guard *does*, not its name: the table
a trigger is on, when it fires and for which statements, whether it is enabled
(a replica-only trigger does not fire in normal sessions), whether a WHEN
clause or a column list narrows it, and the body of the function it runs (on
SQLite, the trigger's whole SQL). A same-name no-op fails the check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection

if TYPE_CHECKING:
    from karr_db.migrations.ops import RevisionContract

__all__ = [
    "PostgresFunction",
    "PostgresTrigger",
    "SqliteTrigger",
    "declared_object_findings",
    "guard_findings",
    "normalized",
]

#: Bits of ``pg_trigger.tgtype``.
TG_ROW, TG_BEFORE, TG_INSERT, TG_DELETE, TG_UPDATE, TG_TRUNCATE = 1, 2, 4, 8, 16, 32
#: ``pg_trigger.tgenabled`` values that fire in an ordinary session ("origin", "always").
_FIRING = ("O", "A")


@dataclass(frozen=True)
class SqliteTrigger:
    name: str
    table: str
    sql: str


@dataclass(frozen=True)
class PostgresFunction:
    name: str
    body: str
    language: str = "plpgsql"
    security_definer: bool = False
    #: ``search_path`` a SECURITY DEFINER function pins; ``{schema}`` is the table's schema.
    search_path: str | None = None


@dataclass(frozen=True)
class PostgresTrigger:
    name: str
    table: str
    tgtype: int
    function: str


Guard = SqliteTrigger | PostgresFunction | PostgresTrigger


def normalized(sql: str) -> str:
    """Whitespace-insensitive text, for comparing stored SQL with what a revision wrote."""
    return " ".join(sql.split())


def guard_findings(connection: Connection, guards: Sequence[Guard]) -> list[str]:
    """One message per guard that is missing or does not do what its revision installed."""
    if connection.dialect.name == "sqlite":
        return _sqlite(connection, [g for g in guards if isinstance(g, SqliteTrigger)])
    return _postgres(connection, guards)


def _sqlite(connection: Connection, guards: list[SqliteTrigger]) -> list[str]:
    live = {
        row[0]: (row[1], row[2])
        for row in connection.exec_driver_sql(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"
        )
    }
    problems = []
    for guard in guards:
        found = live.get(guard.name)
        if found is None:
            problems.append(f"trigger {guard.name} missing from the database (or disabled)")
        elif found[0] != guard.table:
            problems.append(f"trigger {guard.name} is on {found[0]}, not {guard.table}")
        elif normalized(found[1] or "") != normalized(guard.sql):
            problems.append(f"trigger {guard.name} does not do what its revision installed")
    return problems


def _postgres(connection: Connection, guards: Sequence[Guard]) -> list[str]:
    schema = connection.exec_driver_sql(
        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = to_regclass('events')"
    ).scalar()
    problems = []
    for guard in guards:
        if isinstance(guard, PostgresFunction):
            problems += _postgres_function(connection, guard, schema)
        elif isinstance(guard, PostgresTrigger):
            problems += _postgres_trigger(connection, guard, schema)
    return problems


def _postgres_function(
    connection: Connection, guard: PostgresFunction, schema: str | None
) -> list[str]:
    rows = connection.exec_driver_sql(
        "SELECT p.prosrc, l.lanname, p.prosecdef, p.proconfig FROM pg_proc p "
        "JOIN pg_language l ON l.oid = p.prolang "
        "JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE p.proname = %(name)s AND n.nspname = %(schema)s",
        {"name": guard.name, "schema": schema},
    ).all()
    if len(rows) != 1:
        return [f"function {guard.name} missing from the database (or overloaded)"]
    source, language, definer, config = rows[0]
    if normalized(source) != normalized(guard.body) or language != guard.language:
        return [f"function {guard.name} does not do what its revision installed"]
    if bool(definer) != guard.security_definer:
        return [f"function {guard.name} changed its SECURITY DEFINER setting"]
    if guard.search_path is not None:
        expected = "search_path=" + guard.search_path.format(schema=_quoted(connection, schema))
        if list(config or []) != [expected]:
            return [f"function {guard.name} no longer pins {expected}"]
    return []


def _quoted(connection: Connection, name: str | None) -> str:
    return str(connection.exec_driver_sql("SELECT quote_ident(%(n)s)", {"n": name or ""}).scalar())


def _postgres_trigger(
    connection: Connection, guard: PostgresTrigger, schema: str | None
) -> list[str]:
    rows = connection.exec_driver_sql(
        "SELECT t.tgrelid = to_regclass(%(table)s), t.tgtype, t.tgenabled, "
        "t.tgqual IS NULL, t.tgattr::text = '', p.proname, n.nspname "
        "FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
        "JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE NOT t.tgisinternal AND t.tgname = %(name)s",
        {"name": guard.name, "table": guard.table},
    ).all()
    mine = [r for r in rows if r[0]]
    if not mine:
        where = " (it is on another table)" if rows else ""
        return [f"trigger {guard.name} missing from the database (or disabled){where}"]
    _, tgtype, enabled, unconditional, all_columns, function, function_schema = mine[0]
    enabled = enabled.decode() if isinstance(enabled, bytes) else str(enabled)
    if enabled not in _FIRING:
        state = "disabled" if enabled == "D" else "enabled for replicas only"
        return [f"trigger {guard.name} is {state}"]
    if int(tgtype) != guard.tgtype:
        return [f"trigger {guard.name} fires at other times or for other statements"]
    if not unconditional or not all_columns:
        return [f"trigger {guard.name} is narrowed by a WHEN clause or a column list"]
    if (function, function_schema) != (guard.function, schema):
        return [f"trigger {guard.name} runs {function_schema}.{function}, not {guard.function}"]
    return []


def declared_object_findings(
    connection: Connection, contracts: Mapping[str, RevisionContract], *, skip: set[str]
) -> list[tuple[str, str]]:
    """(revision, message) for each trigger or function a contract declares that
    the database lacks; ``skip`` names what a guard already checks more closely."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        live = {
            (str(name), str(table))
            for name, table in connection.exec_driver_sql(
                "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'"
            )
        }
        functions: set[str] = set()
    else:
        live = {
            (str(name), str(table))
            for name, table in connection.exec_driver_sql(
                "SELECT t.tgname, c.relname FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
            )
        }
        functions = {
            str(name)
            for (name,) in connection.exec_driver_sql(
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = current_schema()"
            )
        }
    problems = []
    for revision, contract in contracts.items():
        for trigger in contract.triggers_on(dialect):
            if trigger.name not in skip and (trigger.name, trigger.table) not in live:
                problems.append((revision, f"trigger {trigger.name} missing from {trigger.table}"))
        for function in contract.functions_on(dialect):
            if function not in skip and function not in functions:
                problems.append((revision, f"function {function} missing from the database"))
    return problems
