"""Timestamp text the earlier system wrote, made into karr_db's one canonical form.

karr_db stores a time on SQLite (and in ``agents.last_heartbeat`` on
PostgreSQL, which the reference keeps TEXT) as fixed-width UTC text,
``YYYY-MM-DD HH:MM:SS.ffffff+00:00``, so that comparing the text compares the
instants and the indexes on those columns answer ordering, paging and ranges.
The earlier system wrote two other forms into the same columns (and ``''`` for
unknown), which sort wrongly against it and against each other:

* ``datetime.now().isoformat()``: local wall-clock time, no offset, ``T``
  separator, microseconds (``2026-02-26T21:14:07.512883``);
* SQLite's ``datetime('now')`` defaults: UTC, space separator, no fraction
  (``2026-02-26 21:14:07``).

The rule, in Python here and in SQL in the triggers of revision 0006: a value
with an offset (or ``Z``) means that instant; a naive value with a ``T``
separator is local time in the *legacy time zone* (a setting, default UTC); any
other naive value is UTC (never shifted); blank text is unknown (NULL).
A local time at a clock change (in the hour repeated when clocks go back, or
skipped when they go forward) takes the later of its two candidate instants:
the instant PostgreSQL itself takes when it parses naive text into a
TIMESTAMPTZ column, which no trigger can override, so every writer and reader
agrees on it.

SQLite has no time zone database, so the legacy zone is kept in the table
``karr_legacy_timezone`` (beyond the reference) as the periods of its UTC
offset, computed here from ``zoneinfo``; the triggers look the offset up there.

A little over 400 lines on purpose: the rule, the zone table it reads and the
rewrite of stored rows are one piece; the rule's SQL form (revision 0006's
triggers) is in :mod:`karr_db.migrations.timestamp_triggers`.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy import Connection

from karr_db.errors import FieldError, ValidationError
from karr_db.models import Base
from karr_db.models.types import UTCDateTime, format_timestamp

__all__ = [
    "LEGACY_TIMEZONE_ENV",
    "ZONE_TABLE",
    "TimestampReport",
    "canonical",
    "canonicalise",
    "local_instant",
    "nonconforming",
    "resolve_zone",
    "timestamp_columns",
    "zone_periods",
]

#: The environment variable naming the zone of the earlier system's naive local times.
LEGACY_TIMEZONE_ENV = "KARR_LEGACY_TIMEZONE"

#: Beyond the reference (revision 0006): the legacy zone's UTC offsets by local start.
ZONE_TABLE = "karr_legacy_timezone"

#: What the option is called in errors, whichever way it was given.
OPTION = "legacy_timezone"

CANONICAL_GLOB = (
    "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] "
    "[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]+00:00"
)
CANONICAL_REGEX = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}\+00:00$"
_CANONICAL = re.compile(CANONICAL_REGEX)


# --- the zone -----------------------------------------------------------------


def resolve_zone(name: str | None, *, environ: Mapping[str, str] | None = None) -> ZoneInfo | None:
    """The zone given (else ``$KARR_LEGACY_TIMEZONE``), or ``None`` when neither says one.

    ``None`` lets the caller fall back to the zone a database already records,
    then to UTC.
    """
    env = os.environ if environ is None else environ
    text = name if name is not None else env.get(LEGACY_TIMEZONE_ENV)
    if text is None or not text.strip():
        return None
    try:
        return ZoneInfo(text.strip())
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValidationError(
            "legacy time zone",
            [
                FieldError(
                    OPTION,
                    f"{text!r} is not an IANA time zone name such as 'Europe/Berlin' or 'UTC' "
                    f"(option --legacy-timezone, environment {LEGACY_TIMEZONE_ENV}): {exc}",
                )
            ],
        ) from None


_SCAN_FROM = datetime(1900, 1, 1, tzinfo=UTC)
_SCAN_TO = datetime(2200, 1, 1, tzinfo=UTC)
_STEP = timedelta(days=1)
_SECOND = timedelta(seconds=1)
_LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"
#: Earlier than any local time the table is asked about.
_FIRST = "0000-01-01 00:00:00"


def _offset(zone: ZoneInfo, instant: datetime) -> int:
    delta = instant.astimezone(zone).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


@cache
def zone_periods(zone: ZoneInfo) -> tuple[tuple[str, int], ...]:
    """``(local start, UTC offset in seconds)`` rows for :data:`ZONE_TABLE`, oldest first.

    A naive local time L has the offset of the last row whose start is <= L.
    A period starts at its transition's instant plus its own offset, so that
    a local time a clock change repeats or skips keeps the smaller of the two
    offsets (the later instant, as :func:`local_instant` and PostgreSQL take).
    Transitions are found day by day from 1900 to 2200 and bisected to the second.
    """
    rows = [(_FIRST, _offset(zone, _SCAN_FROM))]
    before = rows[0][1]
    at = _SCAN_FROM
    while at < _SCAN_TO:
        nxt = at + _STEP
        after = _offset(zone, nxt)
        if after != before:
            low, high = at, nxt  # offset(low) == before, offset(high) == after
            while high - low > _SECOND:
                mid = low + (high - low) / 2
                mid = mid.replace(microsecond=0)
                if mid <= low:
                    mid = low + _SECOND
                if _offset(zone, mid) == before:
                    low = mid
                else:
                    high = mid
            start = (high + timedelta(seconds=after)).replace(tzinfo=None)
            rows.append((start.strftime(_LOCAL_FORMAT).rjust(19, "0"), after))
            before = after
        at = nxt
    return tuple(rows)


# --- one value ----------------------------------------------------------------


def local_instant(naive: datetime, zone: ZoneInfo) -> datetime:
    """A naive local time made aware in ``zone``; at a clock change the later of
    its two readings (``fold=0``, ``fold=1``), the one with the smaller offset,
    which is what PostgreSQL takes for a repeated local time and a skipped one alike.
    (Left in ``zone``: converting to UTC is the caller's, which refuses years past 9999.)"""
    readings = [naive.replace(tzinfo=zone, fold=fold) for fold in (0, 1)]
    return min(readings, key=lambda reading: reading.utcoffset() or timedelta(0))


def canonical(text: str, zone: ZoneInfo) -> tuple[str | None, bool]:
    """The canonical text of a stored timestamp (``None`` for blank) and whether
    it was a naive local time read in ``zone``; ``ValueError`` when it is no
    ISO-8601 timestamp."""
    value = text.strip()
    if not value:
        return None, False
    parsed = datetime.fromisoformat(value)
    local = False
    if parsed.tzinfo is None:
        local = "T" in value
        parsed = local_instant(parsed, zone) if local else parsed.replace(tzinfo=UTC)
    return format_timestamp(parsed), local


def is_canonical(text: str) -> bool:
    return bool(_CANONICAL.match(text))


# --- columns ------------------------------------------------------------------


def timestamp_columns(connection: Connection) -> list[tuple[str, str]]:
    """``(table, column)`` of every timestamp stored as text on this dialect, model
    order, in the tables the database has (a revision runs before later ones add theirs)."""
    postgresql = connection.dialect.name == "postgresql"
    present = set(sa.inspect(connection).get_table_names())
    found = []
    for table in Base.metadata.sorted_tables:
        if table.name not in present:
            continue
        for column in table.columns:
            if isinstance(column.type, UTCDateTime) and (not postgresql or column.type.text_only):
                found.append((table.name, column.name))
    return found


def _q(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)


def not_canonical_sql(connection: Connection, column: str) -> str:
    """A condition true for stored text that is not in the canonical form."""
    if connection.dialect.name == "postgresql":
        return f"{column} IS NOT NULL AND {column} !~ '{CANONICAL_REGEX}'"
    return f"{column} IS NOT NULL AND NOT ({column} GLOB '{CANONICAL_GLOB}')"


def nonconforming(connection: Connection) -> dict[str, int]:
    """Rows per ``table.column`` whose timestamp text is not canonical (present tables only)."""
    present = set(sa.inspect(connection).get_table_names())
    counts: dict[str, int] = {}
    for table, column in timestamp_columns(connection):
        if table not in present:
            continue
        where = not_canonical_sql(connection, _q(connection, column))
        n = connection.exec_driver_sql(
            f"SELECT count(*) FROM {_q(connection, table)} WHERE {where}"
        ).scalar_one()
        if n:
            counts[f"{table}.{column}"] = int(n)
    return counts


# --- rewriting many -----------------------------------------------------------


@dataclass
class TimestampReport:
    """What a canonicalisation did: the zone, and rows per ``table.column``."""

    zone: str
    rewritten: dict[str, int] = field(default_factory=dict)
    interpreted: int = 0  # naive local values read in the zone
    unreadable: dict[str, int] = field(default_factory=dict)  # left as they were

    def add(self, other: TimestampReport) -> None:
        for key, n in other.rewritten.items():
            self.rewritten[key] = self.rewritten.get(key, 0) + n
        for key, n in other.unreadable.items():
            self.unreadable[key] = self.unreadable.get(key, 0) + n
        self.interpreted += other.interpreted


_MAP = "karr_timestamp_map"


def canonicalise(
    connection: Connection,
    zone: ZoneInfo,
    columns: Iterable[tuple[str, str]] | None = None,
    *,
    keep_blank: bool = False,
    local_only: bool = False,
) -> TimestampReport:
    """Rewrite every non-canonical timestamp text of ``columns`` in place.

    Each distinct value is converted once in Python (``zoneinfo`` is the
    authority) and applied with one UPDATE per column through a temporary
    mapping table. Values that are no timestamp are left for the caller to
    refuse or report. ``keep_blank`` leaves ``''`` alone (PostgreSQL adoption
    turns it into NULL when it converts the column type, after NOT NULL goes).
    ``local_only`` rewrites naive local (``T``) values alone, and none in UTC:
    PostgreSQL adoption casts the rest to TIMESTAMPTZ in a UTC session, which
    gives those instants already, and each rewrite costs a pass over the table.
    """
    report = TimestampReport(zone=zone.key)
    postgresql = connection.dialect.name == "postgresql"
    if postgresql:
        connection.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {_MAP} (src TEXT PRIMARY KEY, dst TEXT) "
            "ON COMMIT DROP"
        )
    else:
        connection.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {_MAP} (src TEXT PRIMARY KEY, dst TEXT)"
        )
    try:
        for table, column in columns if columns is not None else timestamp_columns(connection):
            _canonicalise_column(
                connection, zone, table, column, report, keep_blank, local_only, postgresql
            )
    finally:
        if not postgresql:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_MAP}")
    return report


def _canonicalise_column(
    connection: Connection,
    zone: ZoneInfo,
    table: str,
    column: str,
    report: TimestampReport,
    keep_blank: bool,
    local_only: bool,
    postgresql: bool,
) -> None:
    t, c = _q(connection, table), _q(connection, column)
    where = not_canonical_sql(connection, c)
    if local_only:
        where += f" AND strpos({c}, 'T') > 0"  # PostgreSQL only
    found = connection.exec_driver_sql(
        f"SELECT {c}, count(*) FROM {t} WHERE {where} GROUP BY {c}"
    ).all()
    if not found:
        return
    key = f"{table}.{column}"
    mapping: list[tuple[str, str | None]] = []
    counts: Counter[str] = Counter()
    for value, n in found:
        try:
            target, local = canonical(value, zone)
        except (ValueError, TypeError):
            counts["unreadable"] += n
            continue
        if local:
            counts["interpreted"] += n
        if (target is None and keep_blank) or target == value:
            continue
        if local_only and (not local or zone.key == "UTC"):
            continue
        mapping.append((value, target))
        counts["rewritten"] += n
    if counts["unreadable"]:
        report.unreadable[key] = counts["unreadable"]
    report.interpreted += counts["interpreted"]
    if not mapping:
        return
    connection.exec_driver_sql(f"DELETE FROM {_MAP}")
    if postgresql:
        connection.exec_driver_sql(
            f"INSERT INTO {_MAP} (src, dst) SELECT * FROM unnest(%s::text[], %s::text[])",
            ([m[0] for m in mapping], [m[1] for m in mapping]),
        )
        connection.exec_driver_sql(
            f"UPDATE {t} SET {c} = m.dst FROM {_MAP} m WHERE {t}.{c} = m.src"
        )
    else:
        connection.exec_driver_sql(f"INSERT INTO {_MAP} (src, dst) VALUES (?, ?)", mapping)
        connection.exec_driver_sql(
            f"UPDATE {t} SET {c} = (SELECT dst FROM {_MAP} WHERE src = {t}.{c}) "
            f"WHERE {c} IN (SELECT src FROM {_MAP})"
        )
    report.rewritten[key] = counts["rewritten"]


def zone_rows(zone: ZoneInfo) -> list[dict[str, Any]]:
    """The rows of :data:`ZONE_TABLE` for ``zone``."""
    return [
        {"local_start": start, "utc_offset": offset, "zone": zone.key}
        for start, offset in zone_periods(zone)
    ]


# --- the zone recorded in the database -----------------------------------------


def zone_table_exists(connection: Connection) -> bool:
    return ZONE_TABLE in sa.inspect(connection).get_table_names()


def recorded_zone(connection: Connection) -> ZoneInfo | None:
    """The legacy zone the database records (revision 0006), if any."""
    if not zone_table_exists(connection):
        return None
    name = connection.exec_driver_sql(f"SELECT min(zone) FROM {ZONE_TABLE}").scalar()
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


ZONE_TABLE_DDL = (
    f"CREATE TABLE IF NOT EXISTS {ZONE_TABLE} ("
    "local_start TEXT PRIMARY KEY, utc_offset INTEGER NOT NULL, zone TEXT NOT NULL)"
)


def record_zone(connection: Connection, zone: ZoneInfo, *, database_default: bool) -> list[str]:
    """Store ``zone`` in :data:`ZONE_TABLE` (which the triggers read); notes for the report.

    With ``database_default`` on PostgreSQL, also make it the database's
    default ``TimeZone``: PostgreSQL reads naive text written into a
    TIMESTAMPTZ column in the session's zone before any trigger could see it,
    so that is the only way the earlier system's naive local times (from code
    still writing during a switch-over) mean the instants they meant.
    karr_db's own sessions set ``TimeZone=UTC`` and bind aware values, so they
    are unaffected.
    """
    connection.exec_driver_sql(ZONE_TABLE_DDL)
    connection.exec_driver_sql(f"DELETE FROM {ZONE_TABLE}")
    table = sa.table(
        ZONE_TABLE, sa.column("local_start"), sa.column("utc_offset"), sa.column("zone")
    )
    connection.execute(table.insert(), zone_rows(zone))
    notes: list[str] = []
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"GRANT SELECT ON {ZONE_TABLE} TO PUBLIC")
        if database_default:
            notes += _set_database_timezone(connection, zone)
    return notes


def _set_database_timezone(connection: Connection, zone: ZoneInfo) -> list[str]:
    name = connection.exec_driver_sql("SELECT current_database()").scalar_one()
    literal = zone.key.replace("'", "''")
    try:
        with connection.begin_nested():
            connection.exec_driver_sql(
                f"ALTER DATABASE {_q(connection, name)} SET TimeZone = '{literal}'"
            )
    except sa.exc.DBAPIError as exc:
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        return [
            f"the database's default TimeZone was not set to {zone.key} ({reason}); "
            f"run ALTER DATABASE ... SET TimeZone = '{zone.key}' as its owner, or have the "
            "earlier system's code connect with that TimeZone"
        ]
    return [f"the database's default TimeZone is now {zone.key}"]


# --- which zone -------------------------------------------------------------------

#: ``Config.attributes`` keys shared by ``upgrade``, the runner and revision 0006.
ATTR_OPTION = "karr_legacy_timezone"  # the zone the caller gave (ZoneInfo), if any
ATTR_ADOPTED = "karr_legacy_zone_used"  # the zone adoption read naive times in


def configured_zone(attributes: Mapping[str, Any]) -> ZoneInfo | None:
    """The zone the caller gave: ``upgrade(legacy_timezone=...)``, else the environment."""
    if ATTR_OPTION in attributes:
        zone = attributes[ATTR_OPTION]
        return zone if isinstance(zone, ZoneInfo) else None
    return resolve_zone(None)


def zone_for_revision(
    connection: Connection | None, attributes: Mapping[str, Any]
) -> tuple[ZoneInfo, bool]:
    """The zone revision 0006 records, and whether it was chosen (by adoption or
    the caller) rather than kept from the database or defaulted to UTC."""
    adopted = attributes.get(ATTR_ADOPTED)
    if isinstance(adopted, ZoneInfo):
        return adopted, True
    given = configured_zone(attributes)
    if given is not None:
        return given, True
    recorded = recorded_zone(connection) if connection is not None else None
    return (recorded or ZoneInfo("UTC")), False
