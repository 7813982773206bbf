"""Worker functions for the multi-process tests of KITT's web-service operations.

Top-level functions taking the database URL, so that ``spawn`` children can
import them; each builds its own engine (see ``ops_helpers``).
"""

from __future__ import annotations

import secrets

from ops_helpers import engine_for

from karr_db.db import transaction
from karr_db.errors import AlreadyExistsError, InvalidTransitionError, NotFoundError
from karr_db.repositories.agents import AgentsRepository
from karr_db.repositories.campaigns import CampaignsRepository


def register_agents(url: str, names: list[str], replace: bool) -> dict[str, str]:
    """Register every name with a token of this process's own; name -> token of
    each registration that was accepted."""
    accepted: dict[str, str] = {}
    with engine_for(url) as engine:
        for name in names:
            token = secrets.token_urlsafe(32)
            try:
                with transaction(engine, immediate=True) as session:
                    AgentsRepository(session).register(
                        name, hostname=f"host-{token[:6]}", port=8090, token=token, replace=replace
                    )
            except AlreadyExistsError:
                continue
            accepted[name] = token
    return accepted


def launch_campaigns(url: str, campaign_ids: list[str]) -> list[str]:
    """Try to launch every campaign; the ids this process won."""
    won: list[str] = []
    with engine_for(url) as engine:
        for campaign_id in campaign_ids:
            try:
                with transaction(engine, immediate=True) as session:
                    CampaignsRepository(session).launch(campaign_id)
                won.append(campaign_id)
            except InvalidTransitionError:
                pass
    return won


def delete_campaigns(url: str, campaign_ids: list[str]) -> list[str]:
    """Try to delete every campaign; the ids this process deleted."""
    deleted: list[str] = []
    with engine_for(url) as engine:
        for campaign_id in campaign_ids:
            try:
                with transaction(engine, immediate=True) as session:
                    CampaignsRepository(session).delete(campaign_id)
                deleted.append(campaign_id)
            except (InvalidTransitionError, NotFoundError):
                pass
    return deleted


def start_or_delete(url: str, campaign_ids: list[str], action: str) -> list[str]:
    """``start_campaigns`` or :func:`delete_campaigns`, by name (one pool, two jobs)."""
    if action == "delete":
        return delete_campaigns(url, campaign_ids)
    won: list[str] = []
    with engine_for(url) as engine:
        for campaign_id in campaign_ids:
            try:
                with transaction(engine, immediate=True) as session:
                    CampaignsRepository(session).start(campaign_id)
                won.append(campaign_id)
            except (InvalidTransitionError, NotFoundError):
                pass
    return won
