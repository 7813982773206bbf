"""Adoption on PostgreSQL: tables altered in place (types converted with every
value checked first, keys, sequences and indexes renamed or rebuilt)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from karr_db.errors import AdoptionError
from karr_db.migrations.adopt._common import (
    naming_failed_rows,
    pk_columns,
    quote,
    refuse_extra_columns,
    row_key,
    value_error,
)
from karr_db.models.types import dumps_json


@dataclass(frozen=True)
class _PgColumn:
    type: str
    not_null: bool
    default: str | None


TEXT_TYPES = ("text", "character varying", "character")
_INT_TYPES = ("integer", "smallint", "bigint")

_ISO_8601 = (
    r"^\d{4}-\d{2}-\d{2}([ T]\d{2}(:\d{2}(:\d{2}(\.\d{1,6})?)?)?)?"
    r"(Z|[+-]\d{2}(:?\d{2})?)?$"
)

_CASTABLE = """
CREATE OR REPLACE FUNCTION pg_temp.karr_castable(value text, target text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'SELECT ' || quote_literal(value) || '::' || target;
    RETURN true;
EXCEPTION WHEN others THEN
    RETURN false;
END
$$
"""


def conform_postgresql(connection: Connection, tables: list[sa.Table]) -> None:
    # Naive timestamps of the earlier system are UTC (the documented rule).
    connection.exec_driver_sql("SET LOCAL TimeZone = 'UTC'")
    for table in tables:
        _conform_pg_table(connection, table)


def pg_columns(connection: Connection, name: str) -> dict[str, _PgColumn]:
    rows = connection.execute(
        sa.text(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
            "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE a.attrelid = to_regclass(:t) AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum"
        ),
        {"t": name},
    )
    return {r[0]: _PgColumn(r[1], r[2], r[3]) for r in rows}


def _conform_pg_table(connection: Connection, table: sa.Table) -> None:
    name = table.name
    quoted = quote(connection, name)
    if not sa.inspect(connection).has_table(name):
        table.create(connection)
        return
    live = pg_columns(connection, name)
    refuse_extra_columns(table, list(live))
    inspector = sa.inspect(connection)
    for check in inspector.get_check_constraints(name):
        connection.exec_driver_sql(
            f"ALTER TABLE {quoted} DROP CONSTRAINT {quote(connection, str(check['name']))}"
        )
    wanted_fks = {_fk_signature(fk): fk for fk in table.foreign_key_constraints}
    for fk in inspector.get_foreign_keys(name):
        sig = (
            tuple(fk["constrained_columns"]),
            fk["referred_table"],
            tuple(fk["referred_columns"]),
            (fk.get("options") or {}).get("ondelete", "").upper() or None,
        )
        if sig not in wanted_fks:
            connection.exec_driver_sql(
                f"ALTER TABLE {quoted} DROP CONSTRAINT {quote(connection, str(fk['name']))}"
            )

    for column in table.columns:
        current = live.get(column.name)
        target = column.type.compile(dialect=connection.dialect).lower()
        col = quote(connection, column.name)
        if current is None:
            connection.exec_driver_sql(f"ALTER TABLE {quoted} ADD COLUMN {col} {target}")
            continue
        if current.not_null and not column.primary_key:
            connection.exec_driver_sql(f"ALTER TABLE {quoted} ALTER COLUMN {col} DROP NOT NULL")
        serial = column is table.autoincrement_column
        if current.default is not None and not serial:
            # Before any type change: PostgreSQL cannot always cast a default.
            connection.exec_driver_sql(f"ALTER TABLE {quoted} ALTER COLUMN {col} DROP DEFAULT")
        if current.type != target:
            _convert_column(connection, table, column, current.type, target)
        if serial:
            if not (current.default or "").startswith("nextval("):
                _attach_sequence(connection, name, column.name)
            _advance_sequence(connection, name, column.name)
        else:
            _conform_default_and_null(connection, table, column)

    for column in table.columns:
        if column.comment:
            connection.execute(sa.schema.SetColumnComment(column))
    _conform_pg_keys(connection, table)
    _conform_pg_indexes(connection, table)


def _conform_default_and_null(
    connection: Connection, table: sa.Table, column: sa.Column[Any]
) -> None:
    """The target's DEFAULT and NOT NULL (every legacy one was dropped above)."""
    quoted, col = quote(connection, table.name), quote(connection, column.name)
    default = column.server_default
    if isinstance(default, sa.DefaultClause) and isinstance(default.arg, sa.TextClause):
        sql = default.arg.text
        connection.exec_driver_sql(f"ALTER TABLE {quoted} ALTER COLUMN {col} SET DEFAULT {sql}")
    if not column.nullable and not column.primary_key:
        _fail_on_first(connection, table, column, f"{col} IS NULL", "is NULL (NOT NULL)")
        connection.exec_driver_sql(f"ALTER TABLE {quoted} ALTER COLUMN {col} SET NOT NULL")


def _fk_signature(fk: sa.ForeignKeyConstraint) -> tuple[Any, ...]:
    return (
        tuple(c.name for c in fk.columns),
        fk.referred_table.name,
        tuple(e.column.name for e in fk.elements),
        fk.ondelete.upper() if fk.ondelete else None,
    )


def _using(column: str, source: str, target: str) -> str:
    if target == "text":
        return f"{column}::text"
    if source.startswith(TEXT_TYPES):
        return f"NULLIF(btrim({column}), '')::{target}"
    if source == "timestamp without time zone" and target == "timestamp with time zone":
        return f"{column} AT TIME ZONE 'UTC'"
    if source == "real" and target == "double precision":
        # The shortest text of the float4 is what every reader saw (0.1, not
        # 0.10000000149011612), so convert through it.
        return f"{column}::text::double precision"
    if source in _INT_TYPES and target == "boolean":
        return f"CASE {column} WHEN 0 THEN false WHEN 1 THEN true END"
    return f"{column}::{target}"


def _convert_column(
    connection: Connection, table: sa.Table, column: sa.Column[Any], source: str, target: str
) -> None:
    quoted, col = quote(connection, table.name), quote(connection, column.name)
    if source in _INT_TYPES and target == "boolean":
        _fail_on_first(
            connection, table, column, f"{col} NOT IN (0, 1)", f"is not 0 or 1 ({target})"
        )
    if source.startswith(TEXT_TYPES) and target.startswith("timestamp"):
        # PostgreSQL also casts 'yesterday', 'now' or '02/12/2026' (read by
        # DateStyle); only ISO-8601 text has one meaning, so only that converts.
        _fail_on_first(
            connection,
            table,
            column,
            f"NULLIF(btrim({col}), '') IS NOT NULL AND btrim({col}) !~ '{_ISO_8601}'",
            "is not an ISO-8601 timestamp",
        )
        # PostgreSQL holds years past 9999 (and before 1) that no reader can read.
        connection.exec_driver_sql(_CASTABLE)
        cast = f"btrim({col})::timestamptz"
        _fail_on_first(
            connection,
            table,
            column,
            f"CASE WHEN NULLIF(btrim({col}), '') IS NOT NULL "
            f"AND pg_temp.karr_castable(btrim({col}), 'timestamptz') "
            f"THEN NOT ({cast} >= '0001-01-01 00:00:00+00' AND {cast} < '10000-01-01 00:00:00+00') "
            "ELSE false END",
            "falls outside the years 1-9999 once converted to UTC",
        )
    alter = (
        f"ALTER TABLE {quoted} ALTER COLUMN {col} TYPE {target} USING {_using(col, source, target)}"
    )
    for attempt in range(2):
        try:
            with connection.begin_nested():
                connection.exec_driver_sql(alter)
            return
        except DBAPIError:
            if attempt or not source.startswith(TEXT_TYPES):
                raise
        # Find the offending row; JSON that only strict parsers reject (the
        # bare NaN/Infinity of Python's json.dumps) is re-encoded losslessly.
        connection.exec_driver_sql(_CASTABLE)
        bad = (
            f"NULLIF(btrim({col}), '') IS NOT NULL AND "
            f"NOT pg_temp.karr_castable(btrim({col}), '{target}')"
        )
        if target == "jsonb":
            _repair_json(connection, table, column, bad)
        else:
            _fail_on_first(connection, table, column, bad, f"cannot be converted to {target}")


def _select_bad(
    connection: Connection, table: sa.Table, column: sa.Column[Any], where: str
) -> sa.CursorResult[Any]:
    pk = pk_columns(table)
    cols = ", ".join(quote(connection, c) for c in [*pk, column.name])
    order = ", ".join(quote(connection, c) for c in pk)
    return connection.exec_driver_sql(
        f"SELECT {cols} FROM {quote(connection, table.name)} WHERE {where} ORDER BY {order}"
    )


def _fail_on_first(
    connection: Connection, table: sa.Table, column: sa.Column[Any], where: str, problem: str
) -> None:
    row = _select_bad(connection, table, column, where).first()
    if row is not None:
        raise value_error(table, column, row, problem)


def _repair_json(
    connection: Connection, table: sa.Table, column: sa.Column[Any], where: str
) -> None:
    import json

    width = len(table.primary_key.columns)
    rows = _select_bad(connection, table, column, where).all()
    pk = pk_columns(table)
    update = sa.text(
        f"UPDATE {quote(connection, table.name)} SET {quote(connection, column.name)} = :v WHERE "
        + " AND ".join(f"{quote(connection, c)} = :k{i}" for i, c in enumerate(pk))
    )
    for row in rows:
        try:
            repaired = dumps_json(json.loads(row[-1]))
        except (ValueError, TypeError) as exc:
            raise value_error(table, column, row, f"is not JSON ({exc})") from None
        if "\x00" in repaired or "\\u0000" in repaired:
            raise AdoptionError(
                "JSON holds a NUL character, which PostgreSQL's JSONB cannot store",
                table=table.name,
                column=column.name,
                row=row_key(row, width),
            )
        connection.execute(update, {"v": repaired, **{f"k{i}": row[i] for i in range(width)}})


def _attach_sequence(connection: Connection, table: str, column: str) -> None:
    seq = quote(connection, f"{table}_{column}_seq")
    quoted, col = quote(connection, table), quote(connection, column)
    connection.exec_driver_sql(f"CREATE SEQUENCE IF NOT EXISTS {seq} OWNED BY {quoted}.{col}")
    connection.exec_driver_sql(
        f"SELECT setval('{seq}', COALESCE((SELECT max({col}) FROM {quoted}), 0) + 1, false)"
    )
    connection.exec_driver_sql(
        f"ALTER TABLE {quoted} ALTER COLUMN {col} SET DEFAULT nextval('{seq}'::regclass)"
    )


def _advance_sequence(connection: Connection, table: str, column: str) -> None:
    """Make the sequence hand out ids above every stored one (rows inserted with
    explicit ids never advanced it), never moving it backwards."""
    seq = connection.execute(
        sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": column}
    ).scalar_one()
    if seq is None:
        return
    quoted, col = quote(connection, table), quote(connection, column)
    last, called = connection.exec_driver_sql(f"SELECT last_value, is_called FROM {seq}").one()
    highest = connection.exec_driver_sql(f"SELECT max({col}) FROM {quoted}").scalar()
    used = last if called else last - 1
    if highest is not None and highest > used:
        connection.execute(sa.text("SELECT setval(:s, :v)"), {"s": seq, "v": highest})


def _rename_constraint(connection: Connection, table: str, old: str, new: str) -> None:
    if old != new:
        connection.exec_driver_sql(
            f"ALTER TABLE {quote(connection, table)} RENAME CONSTRAINT "
            f"{quote(connection, old)} TO {quote(connection, new)}"
        )


def _conform_pg_keys(connection: Connection, table: sa.Table) -> None:
    name = table.name
    quoted = quote(connection, name)
    inspector = sa.inspect(connection)
    target_pk = table.primary_key
    live_pk = inspector.get_pk_constraint(name)
    pk_cols = [c.name for c in target_pk.columns]
    if live_pk.get("constrained_columns") == pk_cols and live_pk.get("name"):
        _rename_constraint(connection, name, str(live_pk["name"]), str(target_pk.name))
    else:
        if live_pk.get("name"):
            connection.exec_driver_sql(
                f"ALTER TABLE {quoted} DROP CONSTRAINT {quote(connection, str(live_pk['name']))}"
            )
        _add_constraint(connection, table, target_pk)

    live_uniques = {tuple(u["column_names"]): u for u in inspector.get_unique_constraints(name)}
    wanted_uniques = [c for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    wanted_cols = {tuple(c.name for c in u.columns) for u in wanted_uniques}
    for cols, live in live_uniques.items():
        if cols not in wanted_cols:
            connection.exec_driver_sql(
                f"ALTER TABLE {quoted} DROP CONSTRAINT {quote(connection, str(live['name']))}"
            )
    for unique in wanted_uniques:
        cols = tuple(c.name for c in unique.columns)
        if cols in live_uniques:
            _rename_constraint(connection, name, str(live_uniques[cols]["name"]), str(unique.name))
        else:
            _add_constraint(connection, table, unique)

    live_fks = {
        (tuple(fk["constrained_columns"]), fk["referred_table"]): fk
        for fk in sa.inspect(connection).get_foreign_keys(name)
    }
    for fk in table.foreign_key_constraints:
        key = (tuple(c.name for c in fk.columns), fk.referred_table.name)
        if key in live_fks:
            _rename_constraint(connection, name, str(live_fks[key]["name"]), str(fk.name))
        else:
            _add_constraint(connection, table, fk)


def _add_constraint(connection: Connection, table: sa.Table, constraint: sa.Constraint) -> None:
    with naming_failed_rows(connection, table, table.name, (constraint,)):
        connection.execute(sa.schema.AddConstraint(constraint))


def _conform_pg_indexes(connection: Connection, table: sa.Table) -> None:
    name = table.name
    live = {
        tuple(str(c) for c in ix["column_names"]): ix
        for ix in sa.inspect(connection).get_indexes(name)
        if not ix.get("duplicates_constraint")
    }
    wanted = {tuple(c.name for c in ix.columns): ix for ix in table.indexes}
    for cols, ix in live.items():
        if cols not in wanted or bool(ix["unique"]) != bool(wanted[cols].unique):
            connection.exec_driver_sql(f"DROP INDEX {quote(connection, str(ix['name']))}")
    for cols, index in wanted.items():
        existing = live.get(cols)
        if existing is not None and bool(existing["unique"]) == bool(index.unique):
            if existing["name"] != index.name:
                connection.exec_driver_sql(
                    f"ALTER INDEX {quote(connection, str(existing['name']))} "
                    f"RENAME TO {quote(connection, str(index.name))}"
                )
        else:
            index.create(connection)
