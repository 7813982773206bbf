"""Agents: registration, hashed tokens, heartbeats, staleness and retirement.

A package split by concern (the DTOs and tag forms, reading, tokens,
heartbeats, the repository that joins them); every public name is importable
from here as it was from the single module.
"""

from karr_db.repositories.agents.repository import (
    AGENT_STATUS_NOTES,
    AGENT_STATUSES,
    AgentCredentials,
    AgentDTO,
    AgentsRepository,
    format_tags,
    parse_tags,
)

__all__ = [
    "AGENT_STATUSES",
    "AGENT_STATUS_NOTES",
    "AgentCredentials",
    "AgentDTO",
    "AgentsRepository",
    "format_tags",
    "parse_tags",
]
