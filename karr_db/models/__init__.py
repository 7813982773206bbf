"""Declarative models of the KARR schema (reference schema version 2)."""

from karr_db.models.agents import Agent
from karr_db.models.base import NAMING_CONVENTION, Base
from karr_db.models.campaigns import QuickTest, WebCampaign
from karr_db.models.events import Event
from karr_db.models.leaderboard import LeaderboardAggregate
from karr_db.models.results import Benchmark, Hardware, Metric, Run
from karr_db.models.schema import SchemaVersion

__all__ = [
    "NAMING_CONVENTION",
    "Agent",
    "Base",
    "Benchmark",
    "Event",
    "Hardware",
    "LeaderboardAggregate",
    "Metric",
    "QuickTest",
    "Run",
    "SchemaVersion",
    "WebCampaign",
]
