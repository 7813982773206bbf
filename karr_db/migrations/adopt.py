"""Adopting databases written by the earlier, hand-rolled migration system.

Such a database has ``schema_version`` rows but no ``alembic_version``. It is
brought to the reference schema of its version (index and constraint names,
nullability, defaults, and on PostgreSQL the column types) without losing or
altering a row, then stamped at the matching revision so that Alembic carries
on from there. Everything happens inside the caller's migration transaction:
a value that cannot be converted stops adoption with an error naming the
table, column and row, and nothing is changed.

The target of version N is what revisions 1..N create (each revision describes
its tables as ``sa.Table`` objects), not the models, which move on with later
revisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from karr_db.errors import AdoptionError
from karr_db.migrations import timestamps
from karr_db.migrations.scripts import reference_tables, revision_for_version
from karr_db.models import Base
from karr_db.models.types import Double, IntBool, JSONDocument, UTCDateTime, dumps_json

_LEGACY_PREFIX = "_karr_legacy_"


def adopt(
    connection: Connection,
    version: int,
    script: ScriptDirectory,
    *,
    legacy_timezone: ZoneInfo | None = None,
) -> timestamps.TimestampReport:
    """Conform a legacy database at ``version`` to the reference and stamp it.

    Naive local times are read in ``legacy_timezone`` (else the zone the
    database records, else UTC); what that did is returned.
    """
    try:
        revision = revision_for_version(version, script)
    except KeyError:
        raise AdoptionError(
            f"schema_version {version} was never written by the earlier system"
        ) from None
    tables = reference_tables(version, script)
    zone = legacy_timezone or timestamps.recorded_zone(connection) or ZoneInfo("UTC")
    _clear_karr_additions(connection, tables)
    if connection.dialect.name == "sqlite":
        _conform_sqlite(connection, tables)
        report = _canonical_timestamps(connection, tables, zone)
    else:
        report = _canonical_timestamps(connection, tables, zone)
        _conform_postgresql(connection, tables)
    _derive(connection)
    MigrationContext.configure(connection).stamp(script, revision)
    return report


def _canonical_timestamps(
    connection: Connection, tables: list[sa.Table], zone: ZoneInfo
) -> timestamps.TimestampReport:
    """Rewrite the earlier system's timestamp text into karr_db's canonical form.

    SQLite: after the rebuild (whose value check has then already refused
    what is no timestamp at all), on the reference tables. PostgreSQL: before
    the columns become TIMESTAMPTZ, on the TEXT ones: the naive local values
    only, since the conversion casts the rest in a UTC session (offsets kept,
    naive space-separated text as UTC), which is the rule already; blanks stay
    for the conversion to make NULL (NOT NULL is still there).
    """
    names = {t.name for t in tables}
    columns = [(t, c) for t, c in _all_timestamp_columns() if t in names]
    if connection.dialect.name == "postgresql":
        columns = [
            (t, c)
            for t, c in columns
            if (live := _pg_columns(connection, t).get(c)) is not None
            and live.type.startswith(_TEXT_TYPES)
        ]
    postgresql = connection.dialect.name == "postgresql"
    return timestamps.canonicalise(
        connection, zone, columns, keep_blank=postgresql, local_only=postgresql
    )


def _all_timestamp_columns() -> list[tuple[str, str]]:
    return [
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, UTCDateTime)
    ]


def _derive(connection: Connection) -> None:
    """Benchmarks, metrics and hardware of the adopted runs as a fresh save would
    write them (the earlier system skipped nested metrics); see karr_db.derive."""
    from karr_db.derive import derive_adopted

    derive_adopted(connection)


def _clear_karr_additions(connection: Connection, tables: list[sa.Table]) -> None:
    """Remove what karr_db's revisions beyond the adopted version added, so that
    those revisions can run again on top of the stamp.

    The earlier system never wrote these objects; they are found in a karr_db
    database that lost its ``alembic_version`` table (its ``schema_version``
    rows still say 1 and 2). By the rule every revision follows, what karr_db
    adds beyond the reference (tables, columns, indexes, triggers, and ``karr_*``
    tables and functions) holds nothing that cannot be rebuilt from the reference tables,
    which are kept row for row; the revisions rebuild it in the same transaction.
    """
    target = {t.name: t for t in tables}
    present = set(sa.inspect(connection).get_table_names())
    for model_table in reversed(Base.metadata.sorted_tables):
        if model_table.name not in target and model_table.name in present:
            connection.exec_driver_sql(f"DROP TABLE {_q(connection, model_table.name)}")
    for own in sorted(name for name in present if name.startswith("karr_")):
        # karr_db's tables outside the models (such as the legacy zone's offsets).
        connection.exec_driver_sql(f"DROP TABLE {_q(connection, own)}")
    karr = [name for name in target if name in present]
    if connection.dialect.name == "sqlite":
        # Indexes and triggers go with the table rebuild; later columns are not copied.
        return
    for name in karr:
        table = target[name]
        model_table = Base.metadata.tables.get(name)
        for column in _pg_columns(connection, name):
            if column not in table.columns and model_table is not None and column in model_table.c:
                connection.exec_driver_sql(
                    f"ALTER TABLE {_q(connection, name)} DROP COLUMN {_q(connection, column)}"
                )
        reference_indexes = {ix.name for ix in table.indexes}
        for index in sa.inspect(connection).get_indexes(name):
            if not index.get("duplicates_constraint") and index["name"] not in reference_indexes:
                connection.exec_driver_sql(f"DROP INDEX {_q(connection, str(index['name']))}")
        triggers = connection.execute(
            sa.text(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(:t) AND NOT tgisinternal"
            ),
            {"t": name},
        ).scalars()
        for trigger in list(triggers):
            connection.exec_driver_sql(
                f"DROP TRIGGER {_q(connection, trigger)} ON {_q(connection, name)}"
            )
    functions = connection.execute(
        sa.text(
            "SELECT p.oid::regprocedure::text FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = current_schema() AND p.proname LIKE 'karr\\_%'"
        )
    ).scalars()
    for function in list(functions):
        connection.exec_driver_sql(f"DROP FUNCTION {function}")


def _q(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)


def _pk_expr(table: sa.Table) -> list[str]:
    return [c.name for c in table.primary_key.columns]


def _row_key(row: Any, width: int) -> Any:
    return row[0] if width == 1 else tuple(row[:width])


# --- SQLite: rebuild every table with the reference DDL ----------------------


def _conform_sqlite(connection: Connection, tables: list[sa.Table]) -> None:
    # With legacy_alter_table on (and foreign keys off, as the migration
    # transaction has them), renaming a table leaves other tables' REFERENCES
    # clauses alone, which is what the copy-and-swap below relies on.
    connection.exec_driver_sql("PRAGMA legacy_alter_table = ON")
    try:
        for table in tables:
            _rebuild_sqlite(connection, table)
    finally:
        connection.exec_driver_sql("PRAGMA legacy_alter_table = OFF")


def _sqlite_scalar(connection: Connection, sql: str, *params: Any) -> Any:
    return connection.exec_driver_sql(sql, params).scalar()


def _rebuild_sqlite(connection: Connection, table: sa.Table) -> None:
    name = table.name
    quoted = _q(connection, name)
    if not _sqlite_scalar(
        connection, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", name
    ):
        table.create(connection)
        return
    live = [row[1] for row in connection.exec_driver_sql(f"PRAGMA table_info({quoted})")]
    _refuse_extra_columns(table, live)
    _validate_sqlite_values(connection, table, live)

    rows_before = _sqlite_scalar(connection, f"SELECT count(*) FROM {quoted}")
    legacy_seq = None
    if _sqlite_scalar(
        connection, "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'"
    ):
        legacy_seq = _sqlite_scalar(
            connection, "SELECT seq FROM sqlite_sequence WHERE name = ?", name
        )
    indexes = (
        connection.exec_driver_sql(
            "SELECT name FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            (name,),
        )
        .scalars()
        .all()
    )
    for index in indexes:
        connection.exec_driver_sql(f"DROP INDEX {_q(connection, index)}")

    legacy = _q(connection, _LEGACY_PREFIX + name)
    connection.exec_driver_sql(f"ALTER TABLE {quoted} RENAME TO {legacy}")
    table.create(connection)
    columns = ", ".join(_q(connection, c.name) for c in table.columns if c.name in live)
    try:
        with connection.begin_nested():
            connection.exec_driver_sql(
                f"INSERT INTO {quoted} ({columns}) SELECT {columns} FROM {legacy}"
            )
    except DBAPIError as exc:
        _explain_copy_failure(connection, table, _LEGACY_PREFIX + name, exc)
    rows_after = _sqlite_scalar(connection, f"SELECT count(*) FROM {quoted}")
    if rows_after != rows_before:
        raise AdoptionError(f"copied {rows_after} of {rows_before} rows", table=name)
    connection.exec_driver_sql(f"DROP TABLE {legacy}")

    if legacy_seq is not None and table.kwargs.get("sqlite_autoincrement"):
        # Keep AUTOINCREMENT's promise: ids of deleted rows are never reused.
        current = _sqlite_scalar(connection, "SELECT seq FROM sqlite_sequence WHERE name = ?", name)
        if current is None:
            connection.exec_driver_sql(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (name, legacy_seq)
            )
        elif legacy_seq > current:
            connection.exec_driver_sql(
                "UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (legacy_seq, name)
            )


def _refuse_extra_columns(table: sa.Table, live: list[str]) -> None:
    model_table = Base.metadata.tables.get(table.name)
    for column in live:
        if column in table.columns:
            continue
        if model_table is not None and column in model_table.c:
            continue  # added by a karr_db revision beyond the reference: rebuilt by it
        raise AdoptionError(
            "column is not in the reference schema and adoption would drop it; "
            "move its data elsewhere and drop the column first",
            table=table.name,
            column=column,
        )


def _validate_sqlite_values(connection: Connection, table: sa.Table, live: list[str]) -> None:
    """Every stored value must read back through the model's type.

    The models (not the revision's plain column types) define how values are
    read, so they are the judge of what is readable.
    """
    dialect = connection.dialect
    pk = _pk_expr(table)
    model = Base.metadata.tables.get(table.name)
    for column in model.columns if model is not None else ():
        if column.name not in live or not isinstance(
            column.type, UTCDateTime | JSONDocument | IntBool | Double
        ):
            continue
        cols = ", ".join(_q(connection, c) for c in [*pk, column.name])
        result = connection.exec_driver_sql(
            f"SELECT {cols} FROM {_q(connection, table.name)} "
            f"WHERE {_q(connection, column.name)} IS NOT NULL"
        )
        for row in result:
            value = row[-1]
            try:
                if isinstance(column.type, IntBool) and value not in (0, 1):
                    raise ValueError(f"{value!r} is not 0 or 1")
                column.type.process_result_value(value, dialect)
            except (ValueError, TypeError) as exc:
                raise AdoptionError(
                    f"value {_preview(value)} cannot be read as {column.type.__class__.__name__}"
                    f" ({exc})",
                    table=table.name,
                    column=column.name,
                    row=_row_key(row, len(pk)),
                ) from None


def _preview(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _explain_copy_failure(
    connection: Connection, table: sa.Table, source: str, exc: DBAPIError
) -> None:
    """Name the rows behind a failed copy (duplicate keys, in practice)."""
    src = _q(connection, source)
    for constraint in table.constraints:
        if not isinstance(constraint, sa.PrimaryKeyConstraint | sa.UniqueConstraint):
            continue
        cols = [c.name for c in constraint.columns]
        quoted = ", ".join(_q(connection, c) for c in cols)
        duplicate = connection.exec_driver_sql(
            f"SELECT {quoted} FROM {src} GROUP BY {quoted} HAVING count(*) > 1 LIMIT 1"
        ).first()
        if duplicate is not None:
            raise AdoptionError(
                f"duplicate value {tuple(duplicate)!r} violates {constraint.name}",
                table=table.name,
                column=",".join(cols),
                row=tuple(duplicate),
            ) from exc
    raise AdoptionError(f"rows could not be copied: {exc.orig}", table=table.name) from exc


# --- PostgreSQL: alter in place ----------------------------------------------


@dataclass(frozen=True)
class _PgColumn:
    type: str
    not_null: bool
    default: str | None


_TEXT_TYPES = ("text", "character varying", "character")
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


def _conform_postgresql(connection: Connection, tables: list[sa.Table]) -> None:
    # Naive timestamps of the earlier system are UTC (the documented rule).
    connection.exec_driver_sql("SET LOCAL TimeZone = 'UTC'")
    for table in tables:
        _conform_pg_table(connection, table)


def _pg_columns(connection: Connection, name: str) -> dict[str, _PgColumn]:
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
    quoted = _q(connection, name)
    if not sa.inspect(connection).has_table(name):
        table.create(connection)
        return
    live = _pg_columns(connection, name)
    _refuse_extra_columns(table, list(live))
    inspector = sa.inspect(connection)
    for check in inspector.get_check_constraints(name):
        connection.exec_driver_sql(
            f"ALTER TABLE {quoted} DROP CONSTRAINT {_q(connection, str(check['name']))}"
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
                f"ALTER TABLE {quoted} DROP CONSTRAINT {_q(connection, str(fk['name']))}"
            )

    for column in table.columns:
        current = live.get(column.name)
        target = column.type.compile(dialect=connection.dialect).lower()
        col = _q(connection, column.name)
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

    for column in table.columns:
        if column.comment:
            connection.execute(sa.schema.SetColumnComment(column))
    _conform_pg_keys(connection, table)
    _conform_pg_indexes(connection, table)


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
    if source.startswith(_TEXT_TYPES):
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
    quoted, col = _q(connection, table.name), _q(connection, column.name)
    if source in _INT_TYPES and target == "boolean":
        _fail_on_first(
            connection, table, column, f"{col} NOT IN (0, 1)", f"is not 0 or 1 ({target})"
        )
    if source.startswith(_TEXT_TYPES) and target.startswith("timestamp"):
        # PostgreSQL also casts 'yesterday', 'now' or '02/12/2026' (read by
        # DateStyle); only ISO-8601 text has one meaning, so only that converts.
        _fail_on_first(
            connection,
            table,
            column,
            f"NULLIF(btrim({col}), '') IS NOT NULL AND btrim({col}) !~ '{_ISO_8601}'",
            "is not an ISO-8601 timestamp",
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
            if attempt or not source.startswith(_TEXT_TYPES):
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
    pk = _pk_expr(table)
    cols = ", ".join(_q(connection, c) for c in [*pk, column.name])
    order = ", ".join(_q(connection, c) for c in pk)
    return connection.exec_driver_sql(
        f"SELECT {cols} FROM {_q(connection, table.name)} WHERE {where} ORDER BY {order}"
    )


def _fail_on_first(
    connection: Connection, table: sa.Table, column: sa.Column[Any], where: str, problem: str
) -> None:
    row = _select_bad(connection, table, column, where).first()
    if row is not None:
        width = len(table.primary_key.columns)
        raise AdoptionError(
            f"value {_preview(row[-1])} {problem}",
            table=table.name,
            column=column.name,
            row=_row_key(row, width),
        )


def _repair_json(
    connection: Connection, table: sa.Table, column: sa.Column[Any], where: str
) -> None:
    import json

    width = len(table.primary_key.columns)
    rows = _select_bad(connection, table, column, where).all()
    pk = _pk_expr(table)
    update = sa.text(
        f"UPDATE {_q(connection, table.name)} SET {_q(connection, column.name)} = :v WHERE "
        + " AND ".join(f"{_q(connection, c)} = :k{i}" for i, c in enumerate(pk))
    )
    for row in rows:
        try:
            repaired = dumps_json(json.loads(row[-1]))
        except (ValueError, TypeError) as exc:
            raise AdoptionError(
                f"value {_preview(row[-1])} is not JSON ({exc})",
                table=table.name,
                column=column.name,
                row=_row_key(row, width),
            ) from None
        if "\x00" in repaired or "\\u0000" in repaired:
            raise AdoptionError(
                "JSON holds a NUL character, which PostgreSQL's JSONB cannot store",
                table=table.name,
                column=column.name,
                row=_row_key(row, width),
            )
        connection.execute(update, {"v": repaired, **{f"k{i}": row[i] for i in range(width)}})


def _attach_sequence(connection: Connection, table: str, column: str) -> None:
    seq = _q(connection, f"{table}_{column}_seq")
    quoted, col = _q(connection, table), _q(connection, column)
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
    quoted, col = _q(connection, table), _q(connection, column)
    last, called = connection.exec_driver_sql(f"SELECT last_value, is_called FROM {seq}").one()
    highest = connection.exec_driver_sql(f"SELECT max({col}) FROM {quoted}").scalar()
    used = last if called else last - 1
    if highest is not None and highest > used:
        connection.execute(sa.text("SELECT setval(:s, :v)"), {"s": seq, "v": highest})


def _rename_constraint(connection: Connection, table: str, old: str, new: str) -> None:
    if old != new:
        connection.exec_driver_sql(
            f"ALTER TABLE {_q(connection, table)} RENAME CONSTRAINT "
            f"{_q(connection, old)} TO {_q(connection, new)}"
        )


def _conform_pg_keys(connection: Connection, table: sa.Table) -> None:
    name = table.name
    quoted = _q(connection, name)
    inspector = sa.inspect(connection)
    target_pk = table.primary_key
    live_pk = inspector.get_pk_constraint(name)
    pk_cols = [c.name for c in target_pk.columns]
    if live_pk.get("constrained_columns") == pk_cols and live_pk.get("name"):
        _rename_constraint(connection, name, str(live_pk["name"]), str(target_pk.name))
    else:
        if live_pk.get("name"):
            connection.exec_driver_sql(
                f"ALTER TABLE {quoted} DROP CONSTRAINT {_q(connection, str(live_pk['name']))}"
            )
        _add_constraint(connection, table, target_pk)

    live_uniques = {tuple(u["column_names"]): u for u in inspector.get_unique_constraints(name)}
    wanted_uniques = [c for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    wanted_cols = {tuple(c.name for c in u.columns) for u in wanted_uniques}
    for cols, live in live_uniques.items():
        if cols not in wanted_cols:
            connection.exec_driver_sql(
                f"ALTER TABLE {quoted} DROP CONSTRAINT {_q(connection, str(live['name']))}"
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
    try:
        with connection.begin_nested():
            connection.execute(sa.schema.AddConstraint(constraint))
    except DBAPIError as exc:
        _explain_copy_failure(connection, table, table.name, exc)


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
            connection.exec_driver_sql(f"DROP INDEX {_q(connection, str(ix['name']))}")
    for cols, index in wanted.items():
        existing = live.get(cols)
        if existing is not None and bool(existing["unique"]) == bool(index.unique):
            if existing["name"] != index.name:
                connection.exec_driver_sql(
                    f"ALTER INDEX {_q(connection, str(existing['name']))} "
                    f"RENAME TO {_q(connection, str(index.name))}"
                )
        else:
            index.create(connection)
