"""The migrated schema agrees with the reference schema, table by table.

The reference ("Database Schema Reference", schema version 2) is the contract.
Its tables, columns, types, constraints, indexes and PostgreSQL type mapping
are kept as facts in ``tests/data/reference_schema.json``, so a plain clone
checks the schema against them. Where the original document is at hand
(``$KARR_REFERENCE_DIR``, else ``../shared/seeds`` beside the checkout), a
cross-check parses it and requires the facts file to say exactly what it says;
without the document that one test skips, unless ``KARR_REQUIRE_REFERENCE=1``
(``.ci/run`` on the machine that holds the contract) makes its absence a
failure.

Where this project goes beyond the reference (a primary key on
``schema_version``, triggers, extra indexes), the extras are allowed here and
listed in the docs; everything the reference names must be present exactly as
it says.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

FACTS = Path(__file__).resolve().parent / "data" / "reference_schema.json"
REFERENCE_DIR_ENV = "KARR_REFERENCE_DIR"
DEFAULT_REFERENCE_DIR = Path(__file__).resolve().parents[2] / "shared" / "seeds"

TABLES = {
    "schema_version",
    "runs",
    "benchmarks",
    "metrics",
    "hardware",
    "agents",
    "web_campaigns",
    "quick_tests",
    "events",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    primary_key: bool = False
    autoincrement: bool = False
    unique: bool = False
    references: tuple[str, str, str | None] | None = None  # (table, column, on delete)


@dataclass(frozen=True)
class Reference:
    schema_version: int
    tables: dict[str, list[Column]]
    indexes: dict[str, tuple[str, list[str]]]
    postgres: dict[str, str]  # "table.column" -> PostgreSQL type, beyond the timestamp rule
    timestamp_type: str


def _column(raw: dict[str, Any]) -> Column:
    ref = raw.get("references")
    return Column(
        name=raw["name"],
        type=raw["type"],
        primary_key=raw.get("primary_key", False),
        autoincrement=raw.get("autoincrement", False),
        unique=raw.get("unique", False),
        references=(ref["table"], ref["column"], ref["on_delete"]) if ref else None,
    )


def load_facts(path: Path = FACTS) -> Reference:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return Reference(
        schema_version=raw["schema_version"],
        tables={t: [_column(c) for c in cols] for t, cols in raw["tables"].items()},
        indexes={n: (ix["table"], ix["columns"]) for n, ix in raw["indexes"].items()},
        postgres=raw["postgresql"]["types"],
        timestamp_type=raw["postgresql"]["timestamps"]["type"],
    )


@pytest.fixture(scope="module")
def reference() -> Reference:
    return load_facts()


def test_the_facts_cover_every_table_of_the_reference(reference: Reference) -> None:
    assert set(reference.tables) == TABLES
    assert reference.schema_version == 2
    assert len(reference.indexes) == 10
    assert reference.postgres["metrics.metric_value"] == "DOUBLE PRECISION"


# --- the cross-check against the document itself -------------------------------------


def _cells(line: str) -> list[str]:
    return [c.strip().strip("`") for c in line.strip().strip("|").split("|")]


def parse_document(text: str) -> Reference:
    """The reference document's tables as facts (the form of ``reference_schema.json``)."""
    tables: dict[str, list[Column]] = {}
    indexes: dict[str, tuple[str, list[str]]] = {}
    postgres: dict[str, str] = {}
    timestamp_type = ""
    section = table = ""
    for line in text.splitlines():
        if line.startswith("## "):
            section, table = line[3:].strip(), ""
        elif line.startswith("### "):
            table = line[4:].strip()
            tables[table] = []
        elif line.startswith("|") and not re.match(r"^\|[-\s|]+\|$", line):
            cells = _cells(line)
            if cells[0] in ("Column", "Index", "SQLite"):
                continue
            if section == "Migration System":
                tables.setdefault("schema_version", []).append(Column(cells[0], cells[1]))
            elif table:
                tables[table].append(_parse_column(cells))
            elif section == "Indexes":
                indexes[cells[0]] = (cells[1], [cells[2]])
            elif section == "PostgreSQL Differences":
                pg_type = cells[1].replace(" PRIMARY KEY", "")
                if "All" in cells[2]:
                    timestamp_type = pg_type
                    continue
                for target in re.findall(r"`([^`]+)`", line.split("|")[3]):
                    postgres[target] = pg_type
    found = re.search(r"\*\*Current schema version:\*\* (\d+)", text)
    return Reference(
        schema_version=int(found.group(1)) if found else 0,
        tables=tables,
        indexes=indexes,
        postgres=postgres,
        timestamp_type=timestamp_type,
    )


def _parse_column(cells: list[str]) -> Column:
    name, type_, constraints = cells[0], cells[1], cells[2]
    fk = re.search(r"FOREIGN KEY -> (\w+)\((\w+)\)", constraints)
    return Column(
        name=name,
        type=type_,
        primary_key="PRIMARY KEY" in constraints,
        autoincrement="AUTOINCREMENT" in constraints,
        unique="UNIQUE" in constraints,
        references=(
            (fk.group(1), fk.group(2), "CASCADE" if "ON DELETE CASCADE" in constraints else None)
            if fk
            else None
        ),
    )


def _reference_document() -> Path | None:
    folder = Path(os.environ.get(REFERENCE_DIR_ENV) or DEFAULT_REFERENCE_DIR)
    for path in sorted(folder.glob("*.txt")) if folder.is_dir() else []:
        if path.read_text(encoding="utf-8").startswith("# Database Schema Reference"):
            return path
    return None


def test_the_facts_say_what_the_reference_document_says(reference: Reference) -> None:
    document = _reference_document()
    if document is None:
        where = os.environ.get(REFERENCE_DIR_ENV) or DEFAULT_REFERENCE_DIR
        if os.environ.get("KARR_REQUIRE_REFERENCE") == "1":
            pytest.fail(f"KARR_REQUIRE_REFERENCE=1 but the schema reference is not in {where}")
        pytest.skip(
            f"cross-check only: the reference document is not in {where} (set "
            f"{REFERENCE_DIR_ENV}); the schema is still checked against {FACTS.name}"
        )
    assert parse_document(document.read_text(encoding="utf-8")) == reference


# --- the live schema against the facts ---------------------------------------------


def _expected_postgres_type(reference: Reference, table: str, column: Column) -> str:
    key = f"{table}.{column.name}"
    if key in reference.postgres:
        wanted = reference.postgres[key]
    elif column.name.endswith("_at") or column.name == "timestamp":
        wanted = reference.timestamp_type
    else:
        wanted = column.type
    return {
        "TEXT": "text",
        "INTEGER": "integer",
        "REAL": "real",
        "SERIAL": "integer",
        "TIMESTAMPTZ": "timestamp with time zone",
        "JSONB": "jsonb",
        "BOOLEAN": "boolean",
        "DOUBLE PRECISION": "double precision",
    }[wanted]


def test_tables_and_columns_match_the_reference(reference: Reference, engine: sa.Engine) -> None:
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        for table, columns in reference.tables.items():
            live = inspector.get_columns(table)
            assert [c["name"] for c in live] == [c.name for c in columns], table
            if engine.dialect.name == "sqlite":
                declared = {
                    row[1]: row[2]
                    for row in connection.exec_driver_sql(f"PRAGMA table_info({table})")
                }
                for column in columns:
                    assert declared[column.name] == column.type, f"{table}.{column.name}"
            else:
                types = dict(
                    connection.execute(
                        sa.text(
                            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                            "WHERE attrelid = to_regclass(:t) AND attnum > 0 AND NOT attisdropped"
                        ),
                        {"t": table},
                    ).all()
                )
                for column in columns:
                    expected = _expected_postgres_type(reference, table, column)
                    assert types[column.name] == expected, f"{table}.{column.name}"


def test_constraints_match_the_reference(reference: Reference, engine: sa.Engine) -> None:
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        for table, columns in reference.tables.items():
            pk = inspector.get_pk_constraint(table)["constrained_columns"]
            fks = {fk["constrained_columns"][0]: fk for fk in inspector.get_foreign_keys(table)}
            uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
            for column in columns:
                if column.primary_key:
                    assert pk == [column.name], table
                if column.autoincrement:
                    if engine.dialect.name == "sqlite":
                        sql = connection.exec_driver_sql(
                            "SELECT sql FROM sqlite_master WHERE name = ?", (table,)
                        ).scalar_one()
                        assert "AUTOINCREMENT" in sql, table
                    else:
                        sequence = connection.execute(
                            sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
                            {"t": table, "c": column.name},
                        ).scalar_one()
                        assert sequence, f"{table}.{column.name} is SERIAL"
                if column.references is not None:
                    referred_table, referred_column, on_delete = column.references
                    fk = fks[column.name]
                    assert (fk["referred_table"], fk["referred_columns"]) == (
                        referred_table,
                        [referred_column],
                    )
                    ondelete = (fk.get("options") or {}).get("ondelete")
                    assert (ondelete or None) == on_delete, f"{table}.{column.name}"
                else:
                    assert column.name not in fks, f"{table}.{column.name} has no foreign key"
                if column.unique:
                    assert (column.name,) in uniques, f"{table}.{column.name}"


def test_indexes_match_the_reference(reference: Reference, engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)
    live = {
        ix["name"]: (table, ix["column_names"])
        for table in inspector.get_table_names()
        for ix in inspector.get_indexes(table)
    }
    for name, (table, columns) in reference.indexes.items():
        assert live.get(name) == (table, columns), name
