"""The reference schema as facts: the committed ``tests/data/reference_schema.json``,
and a parser for the reference document itself (where it is at hand) that yields the same form."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import DATA_DIR, REPO_ROOT

FACTS = DATA_DIR / "reference_schema.json"
REFERENCE_DIR_ENV = "KARR_REFERENCE_DIR"
DEFAULT_REFERENCE_DIR = REPO_ROOT.parent / "shared" / "seeds"


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


def reference_document() -> Path | None:
    folder = Path(os.environ.get(REFERENCE_DIR_ENV) or DEFAULT_REFERENCE_DIR)
    for path in sorted(folder.glob("*.txt")) if folder.is_dir() else []:
        if path.read_text(encoding="utf-8").startswith("# Database Schema Reference"):
            return path
    return None
