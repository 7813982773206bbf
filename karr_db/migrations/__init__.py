"""Upgrade, inspect and check KARR databases from Python.

Everything goes through the Alembic scripts (``karr_db/migrations/alembic``, in
a checkout and in a wheel), so ``alembic upgrade head`` and these functions
behave the same: the same lock, the same legacy adoption. The work is split by
concern: :mod:`.readiness` (status, require_current), :mod:`.upgrading`
(upgrade, upgrade_sql, repair_timestamps), :mod:`.checking` (check), with the
returned models in :mod:`.reports`; revisions declare what they add in
:mod:`.ops`.

Each name is imported from its module when first used (PEP 562): the readiness
check every command runs (``require_current``) loads :mod:`.readiness` alone,
not the checking, guard and timestamp-repair machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from karr_db.migrations.checking import check
    from karr_db.migrations.readiness import (
        DatabaseKind,
        raise_unless_current,
        require_current,
        status,
    )
    from karr_db.migrations.reports import (
        DatabaseStatus,
        Finding,
        TimestampRepair,
        UpgradeReport,
        UpgradeSQL,
    )
    from karr_db.migrations.upgrading import (
        OfflineAdoptionError,
        repair_timestamps,
        upgrade,
        upgrade_sql,
    )

#: The module of ``karr_db.migrations`` each public name comes from.
_LAZY = {
    "DatabaseKind": "readiness",
    "DatabaseStatus": "reports",
    "Finding": "reports",
    "OfflineAdoptionError": "upgrading",
    "TimestampRepair": "reports",
    "UpgradeReport": "reports",
    "UpgradeSQL": "reports",
    "check": "checking",
    "raise_unless_current": "readiness",
    "repair_timestamps": "upgrading",
    "require_current": "readiness",
    "status": "readiness",
    "upgrade": "upgrading",
    "upgrade_sql": "upgrading",
}

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'karr_db.migrations' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"karr_db.migrations.{module}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
