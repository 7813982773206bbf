"""The append-only event log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from karr_db.models import Event
from karr_db.models.types import utcnow


class EventsRepository:
    """Appends and reads events; it has no update or delete on purpose."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def append(self, event_type: str, *, source_id: str | None = None, data: Any = None) -> int:
        """Append one event in the caller's transaction and return its id."""
        result = self.session.execute(
            insert(Event)
            .values(event_type=event_type, source_id=source_id, data=data, created_at=utcnow())
            .returning(Event.id)
        )
        return int(result.scalar_one())
