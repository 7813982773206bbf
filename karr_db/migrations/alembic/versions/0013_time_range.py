"""Revision 0013, beyond the reference: a time outside the years 1-9999 is refused.

Adds no table and no column. The layer refuses such times
before writing (``karr_db.limits``); writers outside it could store them, and
then every reader of the row failed: on SQLite the canonicalising triggers of
revision 0006 turned a year-1 time with a positive offset into year 0000 text
and left a time past 9999 as it was; on PostgreSQL a TIMESTAMPTZ column holds
years before 1 and past 9999, and ``infinity``.

* SQLite: revision 0006's triggers again, now raising "a time outside the years
  1-9999 (UTC) cannot be stored" for such text (the rule is otherwise the same).
* PostgreSQL: revision 0006's text function raises the same for
  ``agents.last_heartbeat``; a ``karr_<table>_time_range`` trigger (BEFORE
  INSERT OR UPDATE, its WHEN clause comparing each TIMESTAMPTZ column with the
  bounds) calls ``karr_refuse_time_out_of_range``, which raises it, on every
  table with a TIMESTAMPTZ column.

The SQL is in ``karr_db/migrations/timestamp_triggers.py``.
"""

from karr_db.migrations import ops

revision: str = "0013"
down_revision: str | None = "0012"

contract = ops.RevisionContract(
    reference_schema_version=None,
    triggers=ops.time_range_triggers(),
    functions=("karr_refuse_time_out_of_range",),
)


def upgrade() -> None:
    ops.install_time_range()
    ops.record_schema_version(contract)


def downgrade() -> None:
    ops.refuse_downgrade()
