"""Declarative models of the KARR schema (KITT's schema 11 and karr_db's additions)."""

from karr_db.models.agents import Agent
from karr_db.models.base import NAMING_CONVENTION, Base
from karr_db.models.campaigns import QuickTest, WebCampaign
from karr_db.models.engines import AgentEngine, EngineProfile
from karr_db.models.events import Event
from karr_db.models.fingerprints import RunFingerprint
from karr_db.models.leaderboard import LeaderboardAggregate
from karr_db.models.logs import CampaignLog, QuickTestLog
from karr_db.models.results import Benchmark, Hardware, Metric, Run
from karr_db.models.schema import SchemaVersion
from karr_db.models.settings import AGENT_SETTING_DEFAULTS, AgentSetting, WebSetting

__all__ = [
    "AGENT_SETTING_DEFAULTS",
    "NAMING_CONVENTION",
    "Agent",
    "AgentEngine",
    "AgentSetting",
    "Base",
    "Benchmark",
    "CampaignLog",
    "EngineProfile",
    "Event",
    "Hardware",
    "LeaderboardAggregate",
    "Metric",
    "QuickTest",
    "QuickTestLog",
    "Run",
    "RunFingerprint",
    "SchemaVersion",
    "WebCampaign",
    "WebSetting",
]
