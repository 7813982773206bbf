"""Proving adoption lossless: rows before (raw, by primary key) against rows after
(through the models' types), with what KITT's later schemas would have made of them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa

from karr_db.engine import make_engine
from karr_db.models import Base
from karr_db.models.types import Double, IntBool, JSONDocument, UTCDateTime, parse_timestamp
from tests.support.equality import same

#: Tables ``upgrade`` of a legacy database adds rows to: the versions it applies, and
#: the benchmarks, metrics and hardware its derivation step writes for each run.
ADDED_TO = frozenset({"schema_version", "benchmarks", "metrics", "hardware"})


def raw_rows(url: str) -> dict[str, dict[Any, dict[str, Any]]]:
    """Rows as the raw driver returns them from the legacy schema, keyed by primary key."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    rows: dict[str, dict[Any, dict[str, Any]]] = {}
    with engine.connect() as connection:
        present = set(sa.inspect(connection).get_table_names())
        for table in Base.metadata.sorted_tables:
            if table.name not in present:
                continue
            pk = table.primary_key.columns[0].name
            result = connection.exec_driver_sql(f'SELECT * FROM "{table.name}"').mappings()
            rows[table.name] = {row[pk]: dict(row) for row in result}
    engine.dispose()
    return rows


def typed_rows(url: str) -> dict[str, dict[Any, dict[str, Any]]]:
    """Rows read through the models' types after adoption."""
    engine = make_engine(url)
    rows: dict[str, dict[Any, dict[str, Any]]] = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            pk = table.primary_key.columns[0].name
            result = connection.execute(sa.select(table)).mappings()
            rows[table.name] = {row[pk]: dict(row) for row in result}
    engine.dispose()
    return rows


def as_typed(value: Any, column: sa.Column[Any]) -> Any:
    """What a legacy value must read back as through the column's type."""
    kind = column.type
    if value is None:
        return None
    if isinstance(kind, UTCDateTime):
        return parse_timestamp(value)
    if isinstance(kind, JSONDocument):
        if isinstance(value, str):
            return json.loads(value) if value.strip() else None  # KITT's '' is "none"
        return value
    if isinstance(kind, IntBool):
        return bool(value)
    if isinstance(kind, Double):
        return float(value)
    return value


def _kitt_default(column: sa.Column[Any]) -> Any:
    """The value KITT's ``DEFAULT`` gives a column added after the row was written."""
    default = column.server_default
    if not isinstance(default, sa.DefaultClause):
        return None
    arg = default.arg
    text = arg.text if isinstance(arg, sa.TextClause) else str(arg)
    return text[1:-1] if text.startswith("'") else text


def expected_row(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as karr_db must hold it after adoption: KITT's later side effects applied
    (tokens moved to token_hash, as KITT's schema 4 does), later columns at KITT's
    defaults, every value read through the models' types."""
    model = Base.metadata.tables[table]
    expected = {
        c.name: as_typed(row[c.name], c) if c.name in row else _kitt_default(c)
        for c in model.columns
    }
    if table == "agents" and "token_hash" not in row and row.get("token"):
        token = row["token"]
        expected.update(
            token="",
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            token_prefix=token[:8],
        )
    return expected


def assert_rows_kept(
    before: dict[str, dict[Any, dict[str, Any]]],
    after: dict[str, dict[Any, dict[str, Any]]],
    added_to: frozenset[str] = ADDED_TO,
) -> int:
    """Every row of ``before`` is in ``after`` by primary key with every value as
    expected (times as instants); only ``added_to`` tables may have more rows.
    Returns how many values were compared."""
    compared = 0
    for table_name, rows in before.items():
        if table_name in added_to:
            assert after[table_name].keys() >= rows.keys(), table_name
        else:
            assert after[table_name].keys() == rows.keys(), table_name
        for key, row in rows.items():
            for name, expected in expected_row(table_name, row).items():
                actual = after[table_name][key][name]
                assert same(expected, actual), (table_name, key, name, expected, actual)
                compared += 1
    return compared
