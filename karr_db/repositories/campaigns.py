"""Campaigns: lifecycle and progress counters."""

from __future__ import annotations

from sqlalchemy.orm import Session


class CampaignsRepository:
    """Placeholder until its issue lands; takes the caller's session."""

    def __init__(self, session: Session) -> None:
        self.session = session
