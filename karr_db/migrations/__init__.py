"""Upgrade, inspect and check KARR databases from Python.

Everything goes through the Alembic scripts (``karr_db/migrations/alembic``, in
a checkout and in a wheel), so ``alembic upgrade head`` and these functions
behave the same: the same lock, the same legacy adoption. The work is split by
concern: :mod:`.readiness` (status, require_current), :mod:`.upgrading`
(upgrade, upgrade_sql, repair_timestamps), :mod:`.checking` (check), with the
returned models in :mod:`.reports`; revisions declare what they add in
:mod:`.ops`.
"""

from karr_db.migrations.checking import check
from karr_db.migrations.readiness import raise_unless_current, require_current, status
from karr_db.migrations.reports import (
    DatabaseStatus,
    Finding,
    TimestampRepair,
    UpgradeReport,
    UpgradeSQL,
)
from karr_db.migrations.state import DatabaseKind
from karr_db.migrations.upgrading import (
    OfflineAdoptionError,
    repair_timestamps,
    upgrade,
    upgrade_sql,
)

__all__ = [
    "DatabaseKind",
    "DatabaseStatus",
    "Finding",
    "OfflineAdoptionError",
    "TimestampRepair",
    "UpgradeReport",
    "UpgradeSQL",
    "check",
    "raise_unless_current",
    "repair_timestamps",
    "require_current",
    "status",
    "upgrade",
    "upgrade_sql",
]
