"""The schema reference (``docs/database.md``), rendered from the models.

The earlier system's schema document said version 2 while its code was at
version 11, because nothing tied the two together. Here the document is
derived from what the code actually creates: the models compiled for SQLite
and for PostgreSQL, their ``comment=`` descriptions, and the Alembic scripts
(revisions, schema versions, triggers). A test fails when the committed file
differs from :func:`render`, and another compares it with the reference.

The layout follows the reference ("Database Schema Reference"): the migration
system, one table per table, the indexes, the PostgreSQL differences; plus an
ER diagram. Whatever goes beyond the reference is marked so. What each
revision adds (its triggers, its reference schema version) comes from the
revision's declared contract (:mod:`karr_db.migrations.ops`).

It lives with the CLI (``karr-db docs``), not in the runtime package root: no
application code renders documentation. One module of ~700 lines on purpose:
each section is a short function over the same models, and splitting them
would only scatter the reference's layout across files.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import Column, Index, Table, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateColumn
from sqlalchemy.types import TypeEngine

from karr_db.dialects import for_dialect
from karr_db.migrations import pending
from karr_db.migrations.ops import DIALECTS
from karr_db.migrations.scripts import contracts, head_revision, script_directory
from karr_db.models import Base
from karr_db.models.types import IntBool, JSONDocument, UTCDateTime
from karr_db.repositories._lifecycle import Transition
from karr_db.repositories.agents import AGENT_STATUS_NOTES
from karr_db.repositories.campaigns import (
    CAMPAIGN_STATUS_NOTES,
    CAMPAIGN_TRANSITIONS,
    CONFIG_EDITABLE,
    PLANNABLE,
    UNDELETABLE,
)
from karr_db.repositories.quick_tests import QUICK_TEST_STATUS_NOTES, QUICK_TEST_TRANSITIONS

__all__ = ["DEFAULT_PATH", "REFERENCE_INDEXES", "Edge", "lifecycle", "render", "write"]

#: Where ``karr-db docs`` writes, relative to the checkout.
DEFAULT_PATH = Path("docs") / "database.md"

#: The indexes the reference names; any other index is marked "beyond the reference".
REFERENCE_INDEXES = frozenset(
    {
        "idx_runs_model",
        "idx_runs_engine",
        "idx_runs_suite_name",
        "idx_runs_timestamp",
        "idx_benchmarks_run_id",
        "idx_metrics_benchmark_id",
        "idx_hardware_run_id",
        "idx_events_event_type",
        "idx_events_source_id",
        "idx_events_created_at",
    }
)

#: Constraints the models add that the reference does not have, by ``table.column``.
BEYOND_REFERENCE_CONSTRAINTS: dict[str, str] = {
    "schema_version.version": "a version is recorded once",
}

#: The reference's order of tables; tables it does not know follow, by name.
TABLE_ORDER = (
    "runs",
    "benchmarks",
    "metrics",
    "hardware",
    "agents",
    "web_campaigns",
    "quick_tests",
    "events",
)
#: The migration system's own table, documented in its section.
VERSION_TABLE = "schema_version"

#: How the reference qualifies a SQLite type that stands for a richer one.
_KIND_LABELS: dict[type[TypeEngine[Any]], str] = {
    UTCDateTime: "timestamps",
    JSONDocument: "JSON",
    IntBool: "booleans",
}
_PG_NAMES = {"TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ"}
_SQLITE: Dialect = for_dialect("sqlite").sqlalchemy_dialect
_POSTGRESQL: Dialect = for_dialect("postgresql").sqlalchemy_dialect
_BEYOND = "*(beyond the reference)*"
#: The schema version the reference document describes; KITT's later ones are marked.
REFERENCE_SCHEMA = 2


@dataclass(frozen=True)
class _Revision:
    revision: str
    schema_version: int | None  # the reference version it records, if any
    reference_version: int  # the reference version a database at this revision implements
    summary: str
    triggers: dict[str, tuple[str, ...]]  # dialect -> trigger names


def _code(text: str) -> str:
    """reST literals (````x````) as Markdown code."""
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def _summary(doc: str | None) -> str:
    text = inspect.cleandoc(doc or "").split("\n\n")[0]
    return _code(" ".join(text.split()))


def _purpose(summary: str) -> str:
    """A revision's summary without its "Schema version N:" prefix."""
    text = re.sub(r"^(Schema version \d+|Revision \d+, beyond the reference):\s*", "", summary)
    return text[:1].upper() + text[1:]


def _revisions(script: ScriptDirectory) -> list[_Revision]:
    declared = contracts(script)
    revisions = []
    reference = 0
    for rev in reversed(list(script.walk_revisions())):
        module = rev.module
        contract = declared[rev.revision]
        triggers = {
            dialect: tuple(t.name for t in contract.triggers_on(dialect)) for dialect in DIALECTS
        }
        recorded = contract.reference_schema_version
        reference = recorded if recorded is not None else reference
        revisions.append(
            _Revision(
                rev.revision,
                recorded,
                reference,
                _purpose(_summary(module.__doc__ or rev.doc)),
                {d: t for d, t in triggers.items() if t},
            )
        )
    return revisions


def _kitt_later() -> dict[str, int]:
    """The KITT schema (3..11) that added each table (``name``) or column
    (``table.column``) the reference document does not have."""
    found: dict[str, int] = {}
    for contract in contracts().values():
        number = contract.reference_schema_version
        if number is None or number <= REFERENCE_SCHEMA:
            continue
        for name in contract.table_names():
            found[name] = number
        for column in contract.columns:
            found[f"{column.table}.{column.name}"] = number
    return found


def _kitt_mark(number: int) -> str:
    return f"*(beyond the reference: KITT's schema {number})*"


def _tables() -> list[Table]:
    tables = Base.metadata.tables
    known = [tables[name] for name in TABLE_ORDER if name in tables]
    others = sorted(
        (t for name, t in tables.items() if name not in TABLE_ORDER and name != VERSION_TABLE),
        key=lambda t: t.name,
    )
    return known + others


def _sqlite_type(column: Column[object]) -> str:
    return str(column.type.compile(dialect=_SQLITE))


def _postgresql_type(column: Column[object]) -> str:
    """The type PostgreSQL gets; SERIAL where the column definition says so."""
    spec = str(CreateColumn(column).compile(dialect=_POSTGRESQL))
    if re.match(rf"{re.escape(column.name)} SERIAL\b", spec):
        return "SERIAL"
    compiled = str(column.type.compile(dialect=_POSTGRESQL))
    return _PG_NAMES.get(compiled, compiled)


def _is_autoincrement(column: Column[object]) -> bool:
    table = column.table
    return bool(table.kwargs.get("sqlite_autoincrement")) and table.autoincrement_column is column


def _is_unique(column: Column[object]) -> bool:
    if column.unique:
        return True
    return any(
        isinstance(c, UniqueConstraint) and list(c.columns) == [column]
        for c in column.table.constraints
    )


def _constraints(column: Column[object]) -> str:
    parts: list[str] = []
    if column.primary_key:
        parts.append("PRIMARY KEY AUTOINCREMENT" if _is_autoincrement(column) else "PRIMARY KEY")
    for fk in sorted(column.foreign_keys, key=lambda f: f.target_fullname):
        target = fk.column
        text = f"FOREIGN KEY -> {target.table.name}({target.name})"
        if fk.ondelete:
            text += f" ON DELETE {fk.ondelete.upper()}"
        parts.append(text)
    if _is_unique(column):
        parts.append("UNIQUE")
    if not column.nullable and not column.primary_key:
        parts.append("NOT NULL")
    text = ", ".join(parts)
    why = BEYOND_REFERENCE_CONSTRAINTS.get(f"{column.table.name}.{column.name}")
    if why and text:
        text += f" {_BEYOND}: {why}"
    return text


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def _description(table: Table) -> str:
    if table.comment:
        return _cell(table.comment)
    for mapper in Base.registry.mappers:
        if mapper.local_table is table:
            return _summary(mapper.class_.__doc__)
    return ""


def _column_rows(table: Table) -> list[str]:
    rows = [
        "| Column | Type | Constraints | Description |",
        "|--------|------|-------------|-------------|",
    ]
    later = _kitt_later()
    for column in table.columns:
        number = later.get(f"{table.name}.{column.name}")
        mark = f" {_kitt_mark(number)}" if number is not None else ""
        rows.append(
            f"| `{column.name}` | {_sqlite_type(column)} | {_constraints(column)} "
            f"| {_cell(column.comment)}{mark} |"
        )
    return rows


def _migration_section(revisions: list[_Revision], head: _Revision) -> list[str]:
    lines = [
        "## Migration System",
        "",
        "Migrations are [Alembic](https://alembic.sqlalchemy.org/) revisions",
        "(`karr_db/migrations/alembic/versions/`, package data of the wheel too). Two numbers,",
        "two meanings:",
        "Alembic records karr_db's revision in `alembic_version`; KITT's `schema_version`",
        "table records KITT's schema numbers: the reference's 1 and 2 and KITT's later",
        "schemas 3..11, each written by the revision that makes that schema, in the same",
        "transaction as its DDL. karr_db's own revisions record nothing there, so KITT",
        "reads a database at head as its schema 11 and applies no migration of its own.",
        "`karr-db check` reports rows that do not match `alembic_version` (rows before",
        "the first one a database has are not expected: KITT's fresh databases record",
        "only the schema they start at).",
        "",
        f"The `{VERSION_TABLE}` table tracks which schema versions have been applied:",
        "",
        *_column_rows(Base.metadata.tables[VERSION_TABLE]),
        "",
        "Revisions:",
        "",
    ]
    for rev in revisions:
        what = (
            f"KITT's schema {rev.schema_version}"
            if rev.schema_version is not None
            else "karr_db's own"
        )
        lines.append(f"- `{rev.revision}` ({what}): {rev.summary}")
    lines += [
        "",
        "Run `karr-db upgrade` (or `alembic upgrade head`) to apply pending revisions; it",
        "first adopts a database KITT made (a SQLite file is backed up first).",
        "`karr-db upgrade --sql` prints the SQL it would run on that database instead (from",
        "its current revision; `--from-empty` for the whole schema; adoption cannot be",
        "rendered). Migrations are forward-only; downgrades are refused. KITT's schemas",
        "1..11 are adopted (SQLite and PostgreSQL, KITT 1.7's fresh PostgreSQL schema",
        "included); a database at a `schema_version` above 11 without `alembic_version`, or",
        "at a revision this release does not know, is left untouched.",
        "",
        "Revisions and adoption change the schema only. The rows a save derives from a",
        "document (benchmarks, nested metrics, hardware, `run_fingerprints`) are written",
        "for the runs they find by a step of `karr-db upgrade` after the revisions, a batch",
        f"of runs per committed transaction. Until then the runs wait in `{pending.TABLE}`",
        "*(beyond the reference)*: `position` (its place in the order derivation follows,",
        "oldest run first) and `run_id`, one row per run, written in the transaction that",
        "adopted the database or applied revision 0007 and deleted in the one that derives",
        "the run, so it is empty at rest. While it holds a row the",
        "database is not ready (reads and writes are refused until `karr-db upgrade` has",
        "finished), `karr-db status` shows `derivation pending` and `karr-db check` reports",
        "it; `alembic upgrade head` alone leaves the runs waiting.",
    ]
    return lines


def _tables_section() -> list[str]:
    lines = ["## Tables"]
    later = _kitt_later()
    for table in _tables():
        description = _description(table)
        if table.name in later:
            description += f" {_kitt_mark(later[table.name])}"
        lines += ["", f"### {table.name}", "", description, "", *_column_rows(table)]
    return lines


def _statuses(statuses: Iterable[str]) -> str:
    return ", ".join(f"`{s}`" for s in statuses)


def _status_rows(notes: dict[Any, tuple[bool, str]]) -> list[str]:
    rows = ["| Status | Meaning |", "|--------|---------|"]
    for status, (in_reference, meaning) in notes.items():
        mark = "" if in_reference else f" {_BEYOND}"
        rows.append(f"| `{status}`{mark} | {_cell(meaning)} |")
    return rows


def _transition_rows(transitions: Iterable[Transition]) -> list[str]:
    rows = ["| Verb | From | To | Also |", "|------|------|----|------|"]
    for t in transitions:
        rows.append(f"| `{t.verb}` | {_statuses(t.allowed_from)} | `{t.to}` | {_cell(t.effect)} |")
    return rows


def _status_section() -> list[str]:
    """The state machines, rendered from the tables the repositories move rows by.

    Bold captions, not ``###`` headings: in this document (as in the reference)
    a ``###`` heading names a table of the schema.
    """
    return [
        "## Statuses",
        "",
        "`status` columns are TEXT without a CHECK constraint, as in the reference, so a",
        "row keeps whatever status its writer gave it and reads back as it is. The",
        "repositories move rows only along the transitions below, each one conditional",
        "UPDATE (`... WHERE status IN (...)`): of two processes racing over a row exactly",
        "one wins, the other gets `InvalidTransitionError`. Statuses marked beyond the",
        "reference are the ones the earlier system wrote and KITT's web services use.",
        "",
        "**`web_campaigns.status`**",
        "",
        *_status_rows(CAMPAIGN_STATUS_NOTES),
        "",
        *_transition_rows(CAMPAIGN_TRANSITIONS),
        "",
        f"`create` writes `draft`. The configuration changes only in {_statuses(CONFIG_EDITABLE)}",
        f"(`update_config`); `set_total_runs` works in {_statuses(PLANNABLE)}; `record_run`",
        f"needs `running`; `delete` is refused in {_statuses([UNDELETABLE])} and keeps the",
        "campaign's events.",
        "",
        "**`quick_tests.status`**",
        "",
        "The reference names no quick-test statuses; all are karr_db's",
        f"{_BEYOND}, and `queued` is also where the earlier system started them.",
        "",
        "| Status | Meaning |",
        "|--------|---------|",
        *[f"| `{s}` | {_cell(m)} |" for s, m in QUICK_TEST_STATUS_NOTES.items()],
        "",
        *_transition_rows(QUICK_TEST_TRANSITIONS),
        "",
        "`dispatch` writes `queued`.",
        "",
        "**`agents.status`**",
        "",
        *_status_rows(AGENT_STATUS_NOTES),
        "",
        "`register` writes `online` (also when it replaces an agent of the same name);",
        "`heartbeat` writes the status it is given (any of the above); `mark_stale_offline`",
        "writes `offline`. Agent statuses have no transition rules: an agent says what it is.",
    ]


def _indexes() -> list[Index]:
    found = [ix for table in _tables() for ix in table.indexes]
    found += list(Base.metadata.tables[VERSION_TABLE].indexes)
    order = {t.name: i for i, t in enumerate(_tables())}
    return sorted(found, key=lambda ix: (order.get(_table_name(ix), len(order)), str(ix.name)))


def _table_name(index: Index) -> str:
    assert index.table is not None  # indexes of the models are bound to their table
    return index.table.name


_DIALECT_NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}


def _index_term(expression: Any) -> str:
    """A column as `name`, an ordered one as `name` DESC NULLS LAST (as PostgreSQL has it)."""
    if isinstance(expression, Column):
        return f"`{expression.name}`"
    text = str(expression.compile(dialect=_POSTGRESQL))
    name, _, order = text.partition(" ")
    return f"`{name.split('.')[-1]}` {order}".strip()


def _index_section() -> list[str]:
    lines = [
        "## Indexes",
        "",
        "The following indexes are created to accelerate common query patterns:",
        "",
        "| Index | Table | Columns | Notes |",
        "|-------|-------|---------|-------|",
    ]
    for index in _indexes():
        columns = ", ".join(_index_term(e) for e in index.expressions)
        notes = [] if index.name in REFERENCE_INDEXES else ["beyond the reference"]
        only = getattr(index, "_ddl_if", None)
        if only is not None and only.dialect:
            notes.append(f"{_DIALECT_NAMES.get(only.dialect, only.dialect)} only")
        if index.unique:
            notes.insert(0, "unique")
        lines.append(f"| `{index.name}` | {_table_name(index)} | {columns} | {', '.join(notes)} |")
    return lines


def _all_tables() -> list[Table]:
    return [*_tables(), Base.metadata.tables[VERSION_TABLE]]


def _postgresql_section() -> list[str]:
    groups: dict[tuple[str, str], list[str]] = {}
    text_only: list[str] = []
    for table in _all_tables():
        for column in table.columns:
            lite, pg = _sqlite_type(column), _postgresql_type(column)
            if isinstance(column.type, UTCDateTime) and column.type.text_only:
                text_only.append(f"`{table.name}.{column.name}`")
            if lite == pg:
                continue
            if pg == "SERIAL":
                key = (f"`{lite} PRIMARY KEY AUTOINCREMENT`", "`SERIAL PRIMARY KEY`")
            else:
                label = _KIND_LABELS.get(type(column.type))
                key = (f"`{lite}`" + (f" ({label})" if label else ""), f"`{pg}`")
            groups.setdefault(key, []).append(f"`{table.name}.{column.name}`")
    lines = [
        "## PostgreSQL Differences",
        "",
        "When using PostgreSQL instead of SQLite, the following type mappings apply",
        "(derived by compiling the models for each dialect):",
        "",
        "| SQLite | PostgreSQL | Affected columns |",
        "|--------|------------|------------------|",
    ]
    # The reference lists the key mapping first; the others in column order.
    ordered = sorted(groups.items(), key=lambda item: "SERIAL" not in item[0][1])
    lines += [f"| {lite} | {pg} | {', '.join(cols)} |" for (lite, pg), cols in ordered]
    lines += [""]
    if text_only:
        lines += [
            f"{', '.join(text_only)} is neither `*_at` nor `timestamp`, so it stays TEXT on",
            "PostgreSQL too; it holds the same fixed-width UTC text, which orders correctly.",
            "",
        ]
    lines += [
        "PostgreSQL's `JSONB` type enables indexing and querying inside JSON columns",
        "directly with operators like `->`, `->>`, and `@>`. Every column's description",
        f"above is also its PostgreSQL column comment {_BEYOND}.",
    ]
    return lines


def _timestamp_section() -> list[str]:
    from karr_db.migrations import timestamps

    return [
        "## Timestamps",
        "",
        "Every time is stored as UTC. Where it is text (every timestamp on SQLite;",
        "`agents.last_heartbeat` on PostgreSQL) it has one fixed-width form,",
        "`YYYY-MM-DD HH:MM:SS.ffffff+00:00`, so comparing text compares instants and the",
        "indexes serve ordering, keyset paging, ranges and staleness.",
        "",
        f"{_BEYOND} Revision `0006` keeps it so whoever writes: text in another form (the",
        "earlier system's `datetime.now().isoformat()` local times, SQLite's",
        "`datetime('now')` UTC defaults, `''` for unknown) is rewritten by triggers on",
        "INSERT and UPDATE, by adoption, and by `karr-db repair-timestamps`. The rule: a",
        "value with an offset or `Z` means that instant; a naive value with a `T` separator",
        "is local time in the legacy time zone (`--legacy-timezone`, "
        f"`${timestamps.LEGACY_TIMEZONE_ENV}`, default UTC); any",
        "other naive value is UTC and never shifted; blank text is NULL. A local time in an",
        "hour a clock change repeats or skips takes the later of its two instants, as",
        "PostgreSQL does when it parses such text into a TIMESTAMPTZ column itself.",
        "`karr-db check` counts the text in any other form, per column.",
        "",
        f"`{timestamps.ZONE_TABLE}` {_BEYOND}, not a model: the legacy zone's UTC offsets",
        "(computed with Python's `zoneinfo`), read by the triggers since SQLite has no time",
        "zone database.",
        "",
        "| Column | Type | Constraints | Description |",
        "|--------|------|-------------|-------------|",
        "| `local_start` | TEXT | PRIMARY KEY | Local wall-clock time from which the offset "
        "applies |",
        "| `utc_offset` | INTEGER | NOT NULL | Seconds east of UTC |",
        "| `zone` | TEXT | NOT NULL | IANA name of the legacy zone |",
        "",
        "On PostgreSQL the TIMESTAMPTZ columns parse text themselves, reading naive text in",
        "the session's `TimeZone`; adoption therefore makes the legacy zone the database's",
        "default `TimeZone` (karr_db's own sessions use UTC), so that the earlier system's",
        "code writing naive local times means the instants it meant. `''` cannot be stored",
        "in a TIMESTAMPTZ column at all: such a write fails loudly.",
    ]


def _bounds_section() -> list[str]:
    from karr_db import limits

    columns = ", ".join(f"`{c}`" for c in limits.INDEXED_TEXT)
    return [
        "## Input Bounds",
        "",
        "Beyond the reference: every public entry point checks these bounds",
        "before either dialect sees a value, so SQLite never stores what PostgreSQL would",
        "refuse, and the refusal is a `ValidationError` naming the field:",
        "",
        "| Values | Bound | Why |",
        "|--------|-------|-----|",
        f"| {columns} | at most {limits.MAX_INDEXED_BYTES} bytes of UTF-8 "
        "| a PostgreSQL btree entry holds 2704 bytes; "
        "`idx_runs_model_engine_timestamp` holds a model and an engine |",
        "| every text value | valid Unicode, no NUL | PostgreSQL TEXT cannot hold NUL; "
        "UTF-8 cannot encode lone surrogates |",
        f"| INTEGER columns (counts, ports, sizes, event ids) | {limits.INT32_MIN} to "
        f"{limits.INT32_MAX} | PostgreSQL's INTEGER is 32 bits |",
        "| timestamps | timezone-aware, years 1-9999 once in UTC (document timestamps: "
        "1000-9999, not empty) | Python's datetime range; SQLite's fixed-width text |",
        f"| `limit` of every `list` (runs, metric histories, agents, campaigns, quick tests, "
        f"events, log lines, engine profiles, agent engines, web settings), numbered pages "
        f"included | 1 to {limits.PAGE_LIMIT} rows a page "
        "| no read holds more than one page; `next_cursor` pages on |",
        f"| a quick test's or campaign's log line; lines in one append "
        f"| at most {limits.MAX_LOG_LINE_BYTES} bytes of UTF-8; at most {limits.PAGE_LIMIT} "
        "| one append is one bounded statement |",
        f"| a web or agent setting's value | at most {limits.MAX_SETTING_BYTES} bytes of UTF-8 "
        "| settings are small text |",
        f"| web settings; engines (engine and mode) per agent | at most "
        f"{limits.MAX_WEB_SETTINGS}; at most {limits.MAX_AGENT_ENGINES} "
        "| reading all of them, or one agent's, is one bounded read |",
        f"| `engine_profiles.build_config`, `runtime_config`, `agents.hardware_details` "
        f"| a JSON object of at most {limits.MAX_CONFIG_BYTES} bytes of JSON text "
        "| what the engine or the dashboard reads back whole |",
    ]


def _trigger_section(revisions: list[_Revision]) -> list[str]:
    rows = [
        f"| `{name}` | {dialect} | `{rev.revision}` | {rev.summary} |"
        for rev in revisions
        for dialect, names in rev.triggers.items()
        for name in names
    ]
    if not rows:
        return []
    return [
        "## Triggers",
        "",
        "Beyond the reference: revisions install these triggers (Alembic does not compare",
        "triggers, so `karr-db check` verifies what each one does: its table, timing,",
        "statements, enabled state, and its SQL or function body). On PostgreSQL revision",
        "`0008` also adds `karr_append_events(...)`, the SECURITY DEFINER function that is",
        "the application role's only way to append (it takes the event-log lock and draws",
        "the ids); `check` verifies its body, SECURITY DEFINER and pinned `search_path` too.",
        "",
        "| Trigger | Dialect | Revision | Purpose |",
        "|---------|---------|----------|---------|",
        *rows,
    ]


def _er_section() -> list[str]:
    lines = [
        "## Entity-Relationship Diagram",
        "",
        "Each column shows its SQLite type, and its PostgreSQL type in quotes.",
        "",
        "```mermaid",
        "erDiagram",
    ]
    for table in _all_tables():
        for column in table.columns:
            for fk in column.foreign_keys:
                parent = fk.column.table.name
                one = "||" if not column.nullable else "|o"
                label = column.name + (f" (ON DELETE {fk.ondelete.upper()})" if fk.ondelete else "")
                lines.append(f'    {parent} {one}--o{{ {table.name} : "{label}"')
    for table in _all_tables():
        lines.append(f"    {table.name} {{")
        for column in table.columns:
            keys = [
                key
                for key, present in (
                    ("PK", column.primary_key),
                    ("FK", bool(column.foreign_keys)),
                    ("UK", _is_unique(column)),
                )
                if present
            ]
            suffix = f" {', '.join(keys)}" if keys else ""
            # Mermaid allows one word as the type: SQLite's, and PostgreSQL's as the comment.
            pg = f' "PostgreSQL {_postgresql_type(column)}"'
            lines.append(f"        {_sqlite_type(column)} {column.name}{suffix}{pg}")
        lines.append("    }")
    lines.append("```")
    return lines


# --- lifecycle diagrams ------------------------------------------------------------
#
# Drawn from the same transition tables as the "Statuses" section (the tables
# the repositories move rows by), so a changed state machine redraws itself.
# The tables do not say which status a new row starts in; that is read from
# the repository's ``insert(..).values(status=S.X.value)``.


@dataclass(frozen=True)
class Edge:
    """One arrow of a state diagram; ``source`` ``None`` is the creation of a row."""

    source: str | None
    target: str
    verb: str


def _created_statuses(repository: type, statuses: type[StrEnum]) -> list[tuple[str, str]]:
    """(method, status) of each ``insert(..).values(status=...)`` in ``repository``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(repository)))
    found: list[tuple[str, str]] = []
    for method in ast.walk(tree):
        if not isinstance(method, ast.FunctionDef):
            continue
        for node in ast.walk(method):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "values"
                and isinstance(node.func.value, ast.Call)
                and isinstance(node.func.value.func, ast.Name)
                and node.func.value.func.id == "insert"
            ):
                continue
            for keyword in node.keywords:
                value = keyword.value
                if isinstance(value, ast.Attribute) and value.attr == "value":
                    value = value.value
                if (
                    keyword.arg == "status"
                    and isinstance(value, ast.Attribute)
                    and isinstance(value.value, ast.Name)
                    and value.value.id == statuses.__name__
                ):
                    found.append((method.name, statuses[value.attr].value))
    return found


def lifecycle(
    transitions: Iterable[Transition], repository: type, statuses: type[StrEnum]
) -> list[Edge]:
    """The arrows of a state machine: creation, then every (from, verb, to) of its table."""
    edges = [Edge(None, status, verb) for verb, status in _created_statuses(repository, statuses)]
    edges += [
        Edge(str(source), str(t.to), t.verb) for t in transitions for source in t.allowed_from
    ]
    return edges


def _state_diagram(title: str, edges: list[Edge], statuses: type[StrEnum]) -> list[str]:
    verbs: dict[tuple[str | None, str], list[str]] = {}
    for edge in edges:
        verbs.setdefault((edge.source, edge.target), []).append(edge.verb)
    leaving = {edge.source for edge in edges}
    lines = [f"**{title}**", "", "```mermaid", "stateDiagram-v2"]
    for (source, target), names in verbs.items():
        lines.append(f"    {source or '[*]'} --> {target} : {', '.join(names)}")
    for status in statuses:
        if status.value not in leaving:
            lines.append(f"    {status.value} --> [*]")
    lines.append("```")
    return lines


def _lifecycle_section() -> list[str]:
    from karr_db.repositories.campaigns import CampaignsRepository, CampaignStatus
    from karr_db.repositories.quick_tests import QuickTestsRepository, QuickTestStatus

    return [
        "## Lifecycle Diagrams",
        "",
        "The transitions of the Statuses section as state diagrams",
        f"{_BEYOND}: each arrow is labelled with the repository method that makes",
        "it; `[*]` is where a row starts and where no transition leads on.",
        "",
        *_state_diagram(
            "Campaigns (`web_campaigns.status`)",
            lifecycle(CAMPAIGN_TRANSITIONS, CampaignsRepository, CampaignStatus),
            CampaignStatus,
        ),
        "",
        *_state_diagram(
            "Quick tests (`quick_tests.status`)",
            lifecycle(QUICK_TEST_TRANSITIONS, QuickTestsRepository, QuickTestStatus),
            QuickTestStatus,
        ),
    ]


def _join(sections: Iterable[list[str]]) -> str:
    return "\n\n".join("\n".join(section) for section in sections if section) + "\n"


def render(script: ScriptDirectory | None = None) -> str:
    """The whole schema reference as Markdown; the same models give the same text."""
    script = script or script_directory()
    revisions = _revisions(script)
    head_id = head_revision(script)
    head = next(r for r in revisions if r.revision == head_id)
    intro = [
        "# Database Schema Reference",
        "",
        "<!-- Generated from karr_db's models and migrations by `karr-db docs`; do not edit.",
        "     Column descriptions live in the models (`comment=`). -->",
        "",
        "This is the schema reference for KARR's database backend, generated from the",
        "SQLAlchemy models and Alembic revisions of karr_db. KARR uses a relational database",
        "to store benchmark results, agent state, campaign progress, and event logs, on SQLite",
        "by default and on PostgreSQL when several processes share it.",
        "",
        f"**Current schema version:** {head.reference_version} (Alembic revision "
        f"`{head.revision}`)",
    ]
    return _join(
        [
            intro,
            _migration_section(revisions, head),
            _tables_section(),
            _status_section(),
            _index_section(),
            _postgresql_section(),
            _timestamp_section(),
            _bounds_section(),
            _trigger_section(revisions),
            _lifecycle_section(),
            _er_section(),
        ]
    )


def write(path: str | Path = DEFAULT_PATH) -> bool:
    """Write the reference to ``path``; whether the file changed."""
    target = Path(path)
    text = render()
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return True
