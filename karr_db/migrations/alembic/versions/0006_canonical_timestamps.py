"""Revision 0006, beyond the reference: every stored time in one canonical text form.

The earlier system wrote local ``T``-separated times and
SQLite's UTC ``datetime('now')`` text into the same columns, and its code may
keep writing them during a switch-over; such text sorts wrongly against
karr_db's fixed-width UTC text, so paging, ranges and staleness went wrong
silently. This revision (see ``karr_db/migrations/timestamps.py``
and ``timestamp_triggers.py``):

* creates ``karr_legacy_timezone``, the UTC offsets of the zone the earlier
  system's naive local times are in (``--legacy-timezone``, default UTC);
* on SQLite, installs AFTER INSERT/UPDATE triggers on every table with a
  timestamp that rewrite any other form into canonical text in the same
  statement (the indexes keep working, no reader changes), and lets revision
  0003's ``events_no_update`` pass that one rewrite;
* on PostgreSQL, installs the same rule as a BEFORE trigger on
  ``agents.last_heartbeat`` (the one timestamp kept as TEXT there); the
  TIMESTAMPTZ columns parse text themselves;
* rewrites what is already stored in another form.
"""

from karr_db.migrations import ops

revision: str = "0006"
down_revision: str | None = "0005"

#: The rule's SQL is in ``karr_db/migrations/timestamp_triggers.py``: it follows
#: the models' timestamp columns, one trigger pair per table that has one.
contract = ops.RevisionContract(
    reference_schema_version=None,
    triggers=ops.canonical_timestamp_triggers(),
    functions=("karr_canonical_timestamp", "karr_canonical_heartbeat"),
    other_tables=("karr_legacy_timezone",),
    # 0003's append-only guard as this revision recreates it (``check`` compares it).
    guards=(ops.SqliteTrigger("events_no_update", "events", ops.canonical_events_no_update_sql()),),
)


def upgrade() -> None:
    ops.install_canonical_timestamps()
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
