"""KITT 1.7's web services over karr_db, on SQLite or PostgreSQL.

KITT's web app builds ``AgentManager``, ``CampaignService``,
``SettingsService``, ``EngineService`` and ``ResultService`` on a ``sqlite3``
connection, and each issues its own SQL. The classes here have the same public
methods and return shapes, take a karr_db :class:`~karr_db.database.Database`
(or a URL) instead, and store through karr_db's repositories: one transaction
per call, an event per change, both dialects. :class:`QuickTestService` does
the storage work KITT's quick-test API handlers do with their own SQL. Each
module's docstring lists where karr_db is deliberately stricter than KITT.
:func:`open_services` builds the whole set the way KITT's ``create_app`` fills
its service registry.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL

from karr_db.database import Database
from karr_db.kitt import KarrResultStore, migrate_or_close
from karr_db.kitt_services._base import HTTP_STATUSES, Publish, http_status
from karr_db.kitt_services.agents import AgentManager
from karr_db.kitt_services.campaigns import CampaignService
from karr_db.kitt_services.engines import EngineService
from karr_db.kitt_services.quick_tests import QuickTestService
from karr_db.kitt_services.results import ResultService
from karr_db.kitt_services.settings import SettingsService

__all__ = [
    "HTTP_STATUSES",
    "AgentManager",
    "CampaignService",
    "EngineService",
    "Publish",
    "QuickTestService",
    "ResultService",
    "SettingsService",
    "http_status",
    "open_services",
]


def open_services(
    target: str | URL | Database | None = None, *, publish: Publish | None = None
) -> dict[str, Any]:
    """KITT's service registry over one karr_db database, migrated to head first.

    Keys as KITT's ``create_app`` names them (``result_service``,
    ``agent_manager``, ``campaign_service``, ``engine_service``,
    ``settings_service``, ``store``) plus ``quick_test_service`` (what KITT's
    quick-test handlers do on their own connection) and ``database``;
    every service shares the one :class:`Database` (close it to release the
    connections). ``publish`` is KITT's ``event_bus.publish``.
    """
    database = target if isinstance(target, Database) else Database(target)
    migrate_or_close(database, close=database is not target, operation="opening the database")
    store = KarrResultStore(database, migrate=False)
    return {
        "database": database,
        "store": store,
        "result_service": ResultService(store),
        "agent_manager": AgentManager(database, publish=publish),
        "campaign_service": CampaignService(database, publish=publish),
        "engine_service": EngineService(database, publish=publish),
        "settings_service": SettingsService(database, publish=publish),
        "quick_test_service": QuickTestService(database, publish=publish),
    }
