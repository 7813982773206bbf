"""The append-only event log that feeds audits and live dashboards."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlalchemy.orm import Mapped, mapped_column

from karr_db.models.base import Base, JSONValue


class Event(Base):
    """One event; ``id`` is the sequence number readers resume from."""

    __tablename__ = "events"
    __table_args__ = (
        Index("idx_events_event_type", "event_type"),
        Index("idx_events_source_id", "source_id"),
        Index("idx_events_created_at", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(
        primary_key=True,
        comment="Event sequence number; readers resume after the last one they saw",
    )
    event_type: Mapped[str | None] = mapped_column(
        comment="Event category, such as run.saved or agent.registered"
    )
    source_id: Mapped[str | None] = mapped_column(
        comment="Identifier of the entity the event is about"
    )
    data: Mapped[JSONValue] = mapped_column(comment="Event details as a JSON object")
    created_at: Mapped[datetime | None] = mapped_column(comment="When the event was appended (UTC)")

    def __repr__(self) -> str:
        return f"Event(id={self.id!r}, event_type={self.event_type!r})"
