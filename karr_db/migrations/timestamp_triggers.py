"""Revision 0006 in SQL: the canonical-timestamp rule as triggers, and the revision's steps.

The rule itself (and the Python that applies it to stored rows) is in
:mod:`karr_db.migrations.timestamps`; this module writes the same rule as SQL
for the triggers that apply it to what writers outside karr_db store, and runs
revision 0006 (called through :mod:`karr_db.migrations.ops`).
"""

from __future__ import annotations

import sqlalchemy as sa

from karr_db.migrations.ops import Trigger
from karr_db.migrations.timestamps import (
    CANONICAL_GLOB,
    CANONICAL_REGEX,
    ZONE_TABLE,
    ZONE_TABLE_DDL,
    canonicalise,
    record_zone,
    timestamp_columns,
    zone_for_revision,
    zone_rows,
)
from karr_db.models import Base
from karr_db.models.types import UTCDateTime

# --- SQL of the rule, for the triggers of revision 0006 -------------------------


#: What the triggers say when a time falls outside what every reader can read.
OUT_OF_RANGE = "a time outside the years 1-9999 (UTC) cannot be stored"


def _sqlite_rule(x: str) -> tuple[str, str]:
    """SQLite expressions: the canonical text of ``x``, NULL for blank, ``x`` itself
    when it is none of the forms below (check reports those, repair reads them);
    and whether ``x`` is such a form whose instant falls outside years 1-9999.

    Forms: ``YYYY-MM-DD[T ]HH:MM:SS`` with an optional ``.fraction`` and an
    optional ``Z`` or ``+HH:MM`` offset. SQLite's datetime() applies offsets
    but keeps only whole seconds, so the fraction is carried over as text.
    (``datetime(v)`` alone echoes 30 February back; a modifier makes it
    normalise, so comparing with the input rejects impossible dates.)
    """
    zs = (
        f"(CASE WHEN substr({x}, -1) = 'Z' THEN 'Z' "
        f"WHEN length({x}) >= 25 AND substr({x}, -6, 1) IN ('+', '-') "
        f"AND substr({x}, -3, 1) = ':' THEN substr({x}, -6) ELSE '' END)"
    )
    base = f"(substr({x}, 1, 10) || ' ' || substr({x}, 12, 8))"
    dot = f"substr({x}, 20, 1) = '.'"
    frac = f"(CASE WHEN {dot} THEN substr({x}, 21, length({x}) - 20 - length({zs})) ELSE '' END)"
    well_formed = (
        f"substr({x}, 11, 1) IN ('T', ' ') AND datetime({base}, '+0 seconds') IS {base} AND "
        f"(CASE WHEN {dot} THEN length({frac}) >= 1 AND NOT ({frac} GLOB '*[^0-9]*') "
        f"ELSE length({x}) = 19 + length({zs}) END)"
    )
    offset = (
        f"(SELECT utc_offset FROM {ZONE_TABLE} WHERE local_start <= {base} "
        "ORDER BY local_start DESC LIMIT 1)"
    )
    utc = (
        f"(CASE WHEN {zs} <> '' THEN datetime({base} || replace({zs}, 'Z', '+00:00')) "
        f"WHEN substr({x}, 11, 1) = 'T' "
        f"THEN datetime({base}, (-coalesce({offset}, 0)) || ' seconds') "
        f"ELSE {base} END)"
    )
    rule = (
        f"(CASE WHEN trim({x}) = '' THEN NULL "
        f"WHEN {well_formed} AND {utc} IS NOT NULL "
        f"THEN {utc} || '.' || substr({frac} || '000000', 1, 6) || '+00:00' "
        f"ELSE {x} END)"
    )
    # datetime() gives year 0000 below year 1 and NULL past year 9999.
    out_of_range = (
        f"({x} IS NOT NULL AND trim({x}) <> '' AND NOT ({x} GLOB '{CANONICAL_GLOB}') "
        f"AND {well_formed} AND ({utc} IS NULL OR {utc} < '0001-01-01'))"
    )
    return rule, out_of_range


def _sqlite_needs(x: str) -> str:
    """True when the rule would change ``x`` (so a trigger never rewrites in vain)."""
    return (
        f"({x} IS NOT NULL AND NOT ({x} GLOB '{CANONICAL_GLOB}') "
        f"AND {_sqlite_rule(x)[0]} IS NOT {x})"
    )


#: The tables revision 0006 installs triggers on: those with a timestamp that
#: exist at that revision. KITT's later tables with a timestamp get theirs from
#: revision 0029 (:data:`LINEAGE_TABLES`).
REVISION_0006_TABLES = (
    "agents",
    "benchmarks",
    "events",
    "quick_tests",
    "runs",
    "schema_version",
    "web_campaigns",
)
#: KITT's tables of schemas 7..11 with a timestamp (revision 0029's triggers).
LINEAGE_TABLES = ("agent_engines", "campaign_logs", "engine_profiles", "quick_test_logs")


def _trigger_tables(names: tuple[str, ...] = REVISION_0006_TABLES) -> dict[str, list[str]]:
    tables: dict[str, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        if table.name not in names:
            continue
        for column in table.columns:
            if isinstance(column.type, UTCDateTime):
                tables.setdefault(table.name, []).append(column.name)
    return tables


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sqlite_trigger_sql(names: tuple[str, ...] = REVISION_0006_TABLES) -> list[str]:
    """Triggers that rewrite, right after an INSERT or UPDATE, timestamp text a
    writer outside karr_db stored in another form (karr_db's own writes are
    canonical already and only pay the WHEN test), on the tables ``names``."""
    statements = []
    for table, columns in _trigger_tables(names).items():
        t = _quote(table)
        sets = ", ".join(
            f"{_quote(c)} = CASE WHEN {_sqlite_needs(_quote(c))} "
            f"THEN {_sqlite_rule(_quote(c))[0]} ELSE {_quote(c)} END"
            for c in columns
        )
        outside = " OR ".join(_sqlite_rule(f"NEW.{_quote(c)}")[1] for c in columns)
        when = " OR ".join(_sqlite_needs(f"NEW.{_quote(c)}") for c in columns)
        body = (
            f"BEGIN SELECT RAISE(ABORT, '{OUT_OF_RANGE}') WHERE {outside}; "
            f"UPDATE {t} SET {sets} WHERE rowid = NEW.rowid; END"
        )
        when = f"{when} OR {outside}"
        statements.append(
            f"CREATE TRIGGER karr_{table}_canonical_time_insert AFTER INSERT ON {t} "
            f"WHEN {when} {body}"
        )
        if table != "events":
            of = ", ".join(_quote(c) for c in columns)
            statements.append(
                f"CREATE TRIGGER karr_{table}_canonical_time_update AFTER UPDATE OF {of} "
                f"ON {t} WHEN {when} {body}"
            )
    return statements


def sqlite_events_no_update_sql() -> str:
    """Revision 0003's guard, letting through one kind of UPDATE only: rewriting
    a non-canonical ``created_at`` into canonical text (or NULL for blank),
    everything else unchanged; anything else stays refused."""
    canon = f"GLOB '{CANONICAL_GLOB}'"
    return (
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events WHEN NOT ("
        "NEW.id IS OLD.id AND NEW.event_type IS OLD.event_type "
        "AND NEW.source_id IS OLD.source_id AND NEW.data IS OLD.data "
        f"AND OLD.created_at IS NOT NULL AND NOT (OLD.created_at {canon}) "
        f"AND (NEW.created_at IS NULL OR NEW.created_at {canon})) "
        "BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed'); END"
    )


PG_FUNCTION = "karr_canonical_timestamp"
PG_TRIGGER_FUNCTION = "karr_canonical_heartbeat"
PG_TRIGGERS = ("karr_agents_canonical_time",)

_PG_FORM = r"^(\d{4}-\d{2}-\d{2})([T ])(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$"


def postgresql_sql() -> list[str]:
    """The same rule for ``agents.last_heartbeat``, the one timestamp PostgreSQL keeps as TEXT."""
    return [
        f"""
        CREATE OR REPLACE FUNCTION {PG_FUNCTION}(value text) RETURNS text
        LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
        DECLARE
            m text[];
            b text;
            utc timestamp;
            off integer;
        BEGIN
            IF value IS NULL OR value ~ '{CANONICAL_REGEX}' THEN
                RETURN value;
            END IF;
            IF btrim(value) = '' THEN
                RETURN NULL;
            END IF;
            m := regexp_match(value, '{_PG_FORM}');
            IF m IS NULL THEN
                RETURN value;
            END IF;
            b := m[1] || ' ' || m[3];
            BEGIN
                IF to_char(b::timestamp, 'YYYY-MM-DD HH24:MI:SS') <> b THEN
                    RETURN value;
                END IF;
                IF m[5] IS NOT NULL THEN
                    utc := (b || replace(m[5], 'Z', '+00:00'))::timestamptz AT TIME ZONE 'UTC';
                ELSIF m[2] = 'T' THEN
                    SELECT utc_offset INTO off FROM {ZONE_TABLE}
                    WHERE local_start <= b ORDER BY local_start DESC LIMIT 1;
                    utc := b::timestamp - make_interval(secs => coalesce(off, 0));
                ELSE
                    utc := b::timestamp;
                END IF;
            EXCEPTION WHEN others THEN
                RETURN value;
            END;
            IF utc < '0001-01-01' OR utc >= '10000-01-01' THEN
                RAISE EXCEPTION '{OUT_OF_RANGE}' USING ERRCODE = '22008';
            END IF;
            RETURN to_char(utc, 'YYYY-MM-DD HH24:MI:SS') || '.'
                || rpad(left(coalesce(m[4], ''), 6), 6, '0') || '+00:00';
        END
        $$
        """,
        f"""
        CREATE OR REPLACE FUNCTION {PG_TRIGGER_FUNCTION}() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            NEW.last_heartbeat := {PG_FUNCTION}(NEW.last_heartbeat);
            RETURN NEW;
        END
        $$
        """,
        f"""
        CREATE TRIGGER {PG_TRIGGERS[0]} BEFORE INSERT OR UPDATE OF last_heartbeat ON agents
        FOR EACH ROW WHEN (NEW.last_heartbeat !~ '{CANONICAL_REGEX}')
        EXECUTE FUNCTION {PG_TRIGGER_FUNCTION}()
        """,
    ]


PG_RANGE_FUNCTION = "karr_refuse_time_out_of_range"


def _native_columns(names: tuple[str, ...] = REVISION_0006_TABLES) -> dict[str, list[str]]:
    """The TIMESTAMPTZ columns on PostgreSQL (every timestamp but the TEXT ones) of
    the tables ``names``."""
    tables: dict[str, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        if table.name not in names:
            continue
        for column in table.columns:
            if isinstance(column.type, UTCDateTime) and not column.type.text_only:
                tables.setdefault(table.name, []).append(column.name)
    return tables


def postgresql_range_sql(
    names: tuple[str, ...] = REVISION_0006_TABLES, *, function: bool = True
) -> list[str]:
    """Triggers refusing a TIMESTAMPTZ value outside years 1-9999 (infinities
    included), which PostgreSQL stores and no reader can read, on the tables
    ``names`` (and, with ``function``, the function they call). The WHEN clause
    keeps the cost of an ordinary write to a comparison per column."""
    statements = [
        f"""
        CREATE OR REPLACE FUNCTION {PG_RANGE_FUNCTION}() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{OUT_OF_RANGE} (table %)', TG_TABLE_NAME USING ERRCODE = '22008';
        END
        $$
        """
    ][: 1 if function else 0]
    for table, columns in _native_columns(names).items():
        outside = " OR ".join(
            f"NEW.{_quote(c)} < '0001-01-01 00:00:00+00' "
            f"OR NEW.{_quote(c)} >= '10000-01-01 00:00:00+00'"
            for c in columns
        )
        statements.append(
            f"CREATE TRIGGER karr_{table}_time_range BEFORE INSERT OR UPDATE ON {_quote(table)} "
            f"FOR EACH ROW WHEN ({outside}) EXECUTE FUNCTION {PG_RANGE_FUNCTION}()"
        )
    return statements


def declared_range_triggers(names: tuple[str, ...] = REVISION_0006_TABLES) -> tuple[Trigger, ...]:
    """What revision 0013 installs on PostgreSQL (0029 on ``LINEAGE_TABLES``), for
    its contract."""
    return tuple(
        Trigger(f"karr_{table}_time_range", table, "postgresql") for table in _native_columns(names)
    )


def install_time_range() -> None:
    """Revision 0013's upgrade: the canonical-time triggers again (now refusing
    times outside years 1-9999) and, on PostgreSQL, the range triggers."""
    from alembic import op

    if op.get_context().dialect.name == "postgresql":
        # Idempotent, as a revision run again over its own objects must be.
        for trigger in declared_range_triggers():
            op.execute(f"DROP TRIGGER IF EXISTS {trigger.name} ON {_quote(trigger.table)}")
        for statement in [*postgresql_sql()[:1], *postgresql_range_sql()]:
            op.execute(statement.strip())
        return
    for trigger in declared_triggers():
        if trigger.dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {_quote(trigger.name)}")
    for statement in sqlite_trigger_sql():
        op.execute(statement)


def declared_lineage_triggers() -> tuple[Trigger, ...]:
    """What revision 0029 installs, for its contract: on SQLite the canonical-time
    triggers (which refuse times outside years 1-9999, as revision 0013's do); on
    PostgreSQL, where the ``*_at`` columns are TIMESTAMPTZ, revision 0013's range
    triggers (KITT's code writes the text ``last_checked`` only through SQLite)."""
    return (
        *(
            Trigger(f"karr_{table}_canonical_time_{event}", table, "sqlite")
            for table in _trigger_tables(LINEAGE_TABLES)
            for event in ("insert", "update")
        ),
        *declared_range_triggers(LINEAGE_TABLES),
    )


def install_lineage_revision() -> None:
    """Revision 0029's upgrade: the triggers on KITT's later tables, and their rows
    rewritten (in the zone revision 0006 recorded)."""
    from alembic import context, op

    dialect = op.get_context().dialect.name
    for trigger in declared_lineage_triggers():  # idempotent, as revision 0013's install
        if trigger.dialect == dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {_quote(trigger.name)}")
        elif trigger.dialect == dialect:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger.name} ON {_quote(trigger.table)}")
    if dialect == "sqlite":
        for statement in sqlite_trigger_sql(LINEAGE_TABLES):
            op.execute(statement)
    else:
        for statement in postgresql_range_sql(LINEAGE_TABLES, function=False):
            op.execute(statement)
    if context.is_offline_mode():
        return
    connection = op.get_bind()
    zone, _ = zone_for_revision(connection, context.config.attributes)
    columns = [
        (table, column)
        for table, column in timestamp_columns(connection)
        if table in LINEAGE_TABLES
    ]
    report = canonicalise(connection, zone, columns)
    context.config.attributes.setdefault("karr_timestamp_reports", []).append(report)


def declared_triggers() -> tuple[Trigger, ...]:
    """What revision 0006 installs, for its contract."""
    sqlite = [
        Trigger(f"karr_{table}_canonical_time_{event}", table, "sqlite")
        for table in _trigger_tables()
        for event in (("insert",) if table == "events" else ("insert", "update"))
    ]
    return (*sqlite, Trigger(PG_TRIGGERS[0], "agents", "postgresql"))


def install_revision() -> None:
    """Revision 0006's upgrade: record the zone, install the triggers, rewrite the rows."""
    from alembic import context, op

    dialect = op.get_context().dialect.name
    attributes = context.config.attributes
    offline = context.is_offline_mode()
    zone, explicit = zone_for_revision(None if offline else op.get_bind(), attributes)
    if offline:
        op.execute(ZONE_TABLE_DDL)
        zone_table = sa.table(
            ZONE_TABLE,
            sa.column("local_start", sa.Text),
            sa.column("utc_offset", sa.Integer),
            sa.column("zone", sa.Text),
        )
        op.bulk_insert(zone_table, zone_rows(zone))
        if dialect == "postgresql":
            op.execute(f"GRANT SELECT ON {ZONE_TABLE} TO PUBLIC")
    else:
        notes = record_zone(op.get_bind(), zone, database_default=explicit)
        attributes.setdefault("karr_timestamp_notes", []).extend(notes)
    if dialect == "postgresql":
        for statement in postgresql_sql():
            op.execute(statement.strip())
    else:
        op.execute("DROP TRIGGER IF EXISTS events_no_update")
        op.execute(sqlite_events_no_update_sql())
        for statement in sqlite_trigger_sql():
            op.execute(statement)
    if not offline:
        report = canonicalise(op.get_bind(), zone)
        attributes.setdefault("karr_timestamp_reports", []).append(report)
