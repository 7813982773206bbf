"""The bounds every input meets, the same on both dialects.

SQLite stores almost anything; PostgreSQL refuses some values outright (NUL in
text, integers beyond its column types, index entries larger than a btree page
allows). A value one dialect keeps and the other refuses would make them
disagree, and a refusal that surfaces as a driver or Python exception breaks
the layer's promise of its own errors. So every public entry point checks its
input against these bounds first and names the field that breaks one.

* **Text** must be valid Unicode (no lone surrogates: UTF-8 cannot encode them)
  without the NUL character (PostgreSQL TEXT cannot hold it).
* **Indexed text** (``runs.model``, ``runs.engine``, ``runs.suite_name``,
  ``metrics.metric_name``, ``agents.name``, ``events.event_type``,
  ``events.source_id``) is at most :data:`MAX_INDEXED_BYTES` bytes of UTF-8.
  A PostgreSQL btree entry holds at most 2704 bytes, and
  ``idx_runs_model_engine_timestamp`` holds a model *and* an engine: two
  values of 1000 bytes plus a timestamp still fit, even incompressible ones.
  The bound is in bytes because that is what the index limits: 1000 ASCII
  characters, about 330 CJK characters, 250 emoji.
* **Integers** of INTEGER columns (counts, ports, sizes) fit 32 bits, which is
  what PostgreSQL's INTEGER holds; other integers (ids, offsets) fit 64 bits.
* **Timestamps** are timezone-aware and stay within Python's years 1-9999 once
  converted to UTC.
* **Event data** is JSON of at most :data:`MAX_EVENT_DATA_BYTES` bytes (its
  compact text) nested at most ``documents.MAX_DEPTH`` levels; the
  PostgreSQL append function checks the same (revision 0012) and takes at most
  :data:`MAX_EVENTS_PER_APPEND` events a call (the layer sends more in several).
* **Pages** hold at most :data:`PAGE_LIMIT` rows, whatever the listing (runs,
  metric histories, agents, campaigns, quick tests, events, log lines, engine
  profiles, agent engines, web settings): a caller that wants more follows
  ``next_cursor``, so no read holds more than one page.
* **KITT's operations data** beyond the reference: a log line holds at most
  :data:`MAX_LOG_LINE_BYTES` and one append at most :data:`PAGE_LIMIT` lines; a
  setting's value at most :data:`MAX_SETTING_BYTES`; there are at most
  :data:`MAX_WEB_SETTINGS` web settings (so reading all of them is one bounded
  read) and :data:`MAX_AGENT_ENGINES` engine rows per agent; an engine profile's
  configurations at most :data:`MAX_CONFIG_BYTES` of JSON text each, as is an
  agent's ``hardware_details``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = [
    "INDEXED_TEXT",
    "INT32_MAX",
    "INT32_MIN",
    "INT64_MAX",
    "INT64_MIN",
    "MAX_AGENT_ENGINES",
    "MAX_CONFIG_BYTES",
    "MAX_EVENTS_PER_APPEND",
    "MAX_EVENT_DATA_BYTES",
    "MAX_INDEXED_BYTES",
    "MAX_LOG_LINE_BYTES",
    "MAX_SETTING_BYTES",
    "MAX_WEB_SETTINGS",
    "PAGE_LIMIT",
    "earlier",
    "integer_problem",
    "moment_problem",
    "sized_text_problem",
    "text_problem",
]

#: Largest UTF-8 size of a value of an indexed text column (see module doc).
MAX_INDEXED_BYTES = 1000
#: The indexed text columns whose values come from callers, as ``table.column``
#: (the other indexed text columns hold ids and times the layer writes itself).
INDEXED_TEXT = (
    "runs.model",
    "runs.engine",
    "runs.suite_name",
    "benchmarks.test_name",
    "metrics.metric_name",
    "agents.name",
    "events.event_type",
    "events.source_id",
    "web_settings.key",
    "agent_settings.key",
    "engine_profiles.name",
    "engine_profiles.engine",
    "agent_engines.engine",
    "agent_engines.mode",
)

#: The most rows one page of any ``list`` returns. One bound for every listing:
#: results, metric histories and events served 1000 before it was shared, and
#: campaigns and quick tests 500; the larger one refuses nothing that worked.
PAGE_LIMIT = 1000

#: Largest compact JSON text of one event's data, in bytes of UTF-8.
MAX_EVENT_DATA_BYTES = 1_000_000
#: Most events one call of PostgreSQL's append function takes (revision 0012).
MAX_EVENTS_PER_APPEND = 10_000
#: Largest UTF-8 size of one log line of a quick test or campaign (a line of a
#: container's output; longer ones are the caller's to split).
MAX_LOG_LINE_BYTES = 64 * 1024
#: Largest UTF-8 size of a web or agent setting's value.
MAX_SETTING_BYTES = 64 * 1024
#: Most web settings a database holds: ``all()`` reads them in one bounded read.
MAX_WEB_SETTINGS = PAGE_LIMIT
#: Most engine rows (engine and mode) one agent reports.
MAX_AGENT_ENGINES = 100
#: Largest JSON text of one engine profile configuration or of an agent's hardware details.
MAX_CONFIG_BYTES = 256 * 1024

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def text_problem(value: object, *, indexed: bool = False) -> str | None:
    """Why ``value`` cannot be stored as text on both dialects, or ``None``."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if "\x00" in value:
        return "contains the NUL character, which PostgreSQL cannot store"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode (lone surrogate)"
    if indexed and size > MAX_INDEXED_BYTES:
        return f"is {size} bytes of UTF-8, more than the {MAX_INDEXED_BYTES} an indexed field holds"
    return None


def sized_text_problem(value: object, limit: int) -> str | None:
    """Why ``value`` cannot be stored as text of at most ``limit`` bytes of UTF-8, or ``None``."""
    problem = text_problem(value)
    if problem is None and len(str(value).encode("utf-8")) > limit:
        return f"is more than the {limit} bytes of UTF-8 it may hold"
    return problem


def integer_problem(value: object, *, low: int = INT64_MIN, high: int = INT64_MAX) -> str | None:
    """Why ``value`` is not an integer in ``[low, high]``, or ``None``."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be an integer, not {type(value).__name__}"
    if not low <= value <= high:
        return f"must be between {low} and {high}"
    return None


def moment_problem(value: object) -> str | None:
    """Why ``value`` is not a timezone-aware datetime that has a UTC reading, or ``None``."""
    if not isinstance(value, datetime):
        return f"must be a datetime, not {type(value).__name__}"
    if value.utcoffset() is None:
        return "must be a timezone-aware datetime"
    try:
        value.astimezone(UTC)
    except OverflowError:
        return "falls outside the years 1-9999 once converted to UTC"
    return None


def earlier(moment: datetime, delta: timedelta) -> datetime:
    """``moment - delta``, clamped to the representable range instead of overflowing.

    A cutoff before the first representable instant matches what it would
    have matched (nothing stored is older), so clamping answers the question
    the caller asked rather than refusing it.
    """
    try:
        return moment - delta
    except OverflowError:
        edge = datetime.min if delta > timedelta(0) else datetime.max
        return edge.replace(tzinfo=UTC)
