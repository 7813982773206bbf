"""KITT result documents: save, read, query, aggregate, import and export."""

from __future__ import annotations

from sqlalchemy.orm import Session


class ResultsRepository:
    """Placeholder until its issue lands; takes the caller's session."""

    def __init__(self, session: Session) -> None:
        self.session = session
