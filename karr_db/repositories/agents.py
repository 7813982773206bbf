"""Agents: registration, hashed tokens, heartbeats."""

from __future__ import annotations

from sqlalchemy.orm import Session


class AgentsRepository:
    """Placeholder until its issue lands; takes the caller's session."""

    def __init__(self, session: Session) -> None:
        self.session = session
