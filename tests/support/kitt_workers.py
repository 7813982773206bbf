"""Worker functions for the multi-process tests of KITT's services over karr_db.

Top-level functions taking the database URL, so that ``spawn`` children can
import and run them; each builds its own service and closes it.
"""

from __future__ import annotations

from types import SimpleNamespace

from karr_db.errors import InvalidTokenError
from karr_db.kitt_services import AgentManager, CampaignService


def _registration(name: str, hostname: str) -> SimpleNamespace:
    """The attributes of KITT's ``AgentRegistration`` (defaults as KITT's)."""
    return SimpleNamespace(
        name=name,
        hostname=hostname,
        port=8090,
        gpu_info="",
        gpu_count=0,
        cpu_info="",
        cpu_arch="",
        ram_gb=0,
        environment_type="",
        fingerprint="",
        kitt_version="",
        hardware_details="",
    )


def register_names(url: str, tokens: dict[str, str], hostname: str) -> dict[str, str]:
    """Register every name with its token through ``AgentManager.register``;
    the names accepted, with the agent id each got."""
    accepted: dict[str, str] = {}
    with AgentManager(url, migrate=False) as agents:
        for name, token in tokens.items():
            try:
                answer = agents.register(_registration(name, hostname), token)
            except InvalidTokenError:
                continue
            accepted[name] = answer["agent_id"]
    return accepted


def heartbeat_until_idle(url: str, agent_id: str) -> list[str]:
    """Heartbeat until no command comes back; the test ids handed out."""
    received: list[str] = []
    with AgentManager(url, migrate=False) as agents:
        while True:
            answer = agents.heartbeat(agent_id, SimpleNamespace(status="idle", engines=[]))
            if not answer["commands"]:
                return received
            received += [command["test_id"] for command in answer["commands"]]


def launch_all(url: str, campaign_ids: list[str]) -> list[bool]:
    """``update_status(id, "queued")`` for each campaign, as KITT's launch handler does."""
    with CampaignService(url, migrate=False) as campaigns:
        return [campaigns.update_status(campaign_id, "queued") for campaign_id in campaign_ids]
