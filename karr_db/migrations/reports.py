"""What the migration API returns: status, findings, upgrade and repair reports.

Pydantic models, frozen, so the CLI prints them as JSON as they are.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from karr_db.migrations.readiness import DatabaseKind

__all__ = [
    "Database",
    "DatabaseStatus",
    "Derivation",
    "Finding",
    "TimestampRepair",
    "UpgradeReport",
    "UpgradeSQL",
]

Database = str | URL | Engine


class DatabaseStatus(BaseModel):
    """Where a database stands relative to this release's migrations."""

    model_config = ConfigDict(frozen=True)

    url: str  # password masked
    dialect: str
    kind: DatabaseKind
    # Two numbers, two meanings: ``alembic_revision`` is karr_db's migration
    # (0001, 0002, ... including its own revisions beyond KITT's);
    # ``schema_version`` is the newest KITT schema number recorded (1..11).
    alembic_revision: str | None
    schema_version: int | None
    head_revision: str
    head_schema_version: int  # the KITT schema the head revision implements (11)
    pending: list[str]  # revisions ``upgrade`` would apply, oldest first
    needs_adoption: bool
    #: Runs whose rows ``upgrade``'s derivation step has still to write (0: none).
    derivation_pending: int = 0
    tables: list[str]
    row_counts: dict[str, int] = {}  # rows per KARR table, when asked for


class Finding(BaseModel):
    """One problem ``check`` found."""

    model_config = ConfigDict(frozen=True)

    #: "state", "pending", "derivation", "drift", "bridge", "timestamps", "foreign", "derived"
    kind: str
    message: str


class Derivation(BaseModel):
    """What ``upgrade``'s derivation step added for the runs it derived (the
    counts of :class:`karr_db.derive.DeriveReport`; nothing is ever removed)."""

    model_config = ConfigDict(frozen=True)

    runs: int = 0
    benchmarks_added: int = 0
    metrics_added: int = 0
    hardware_added: int = 0
    fingerprints_added: int = 0
    refused: int = 0  # documents a save would refuse: nothing derived for them
    refused_examples: list[str] = []  # "run id: reason", the first few


class UpgradeReport(BaseModel):
    """What an upgrade did."""

    model_config = ConfigDict(frozen=True)

    adopted: bool
    from_revision: str | None
    to_revision: str | None
    applied: list[str]
    # Timestamps (revision 0006 and adoption): the zone naive local times were
    # read in, how many were, and rows rewritten into canonical text per column.
    legacy_timezone: str | None = None
    timestamps_interpreted: int = 0
    timestamps_rewritten: dict[str, int] = {}
    notes: list[str] = []

    #: The schema_version the database was at before (a legacy one has no revision).
    from_schema_version: int | None = None
    created: bool = False  # a new SQLite file was created
    backup: str | None = None  # the copy written before adopting a SQLite file
    #: The derivation step's work (runs adoption or revision 0007 queued, including
    #: what an interrupted upgrade left); None when no run was queued.
    derived: Derivation | None = None


class UpgradeSQL(BaseModel):
    """What ``upgrade --sql`` renders for one database."""

    model_config = ConfigDict(frozen=True)

    kind: DatabaseKind  # the database's state when it was read ("empty" with from_empty)
    from_revision: str | None  # where the script starts (None: from an empty database)
    to_revision: str
    sql: str  # empty when there is nothing to do


class TimestampRepair(BaseModel):
    """What :func:`repair_timestamps` did."""

    model_config = ConfigDict(frozen=True)

    legacy_timezone: str  # the zone naive local times were read in
    interpreted: int  # naive local values read in that zone
    rewritten: dict[str, int]  # rows rewritten per ``table.column``
    unreadable: dict[str, int]  # rows left alone: not a timestamp at all
    notes: list[str] = []
