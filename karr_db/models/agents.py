"""Agent daemons that run benchmarks on remote GPU hosts."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Integer, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from karr_db.models.base import Base
from karr_db.models.types import UTCDateTime

if TYPE_CHECKING:
    from karr_db.models.campaigns import QuickTest, WebCampaign


class Agent(Base):
    """A registered agent; ``token`` holds a one-way hash, never the secret."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str | None] = mapped_column(Text, unique=True)
    hostname: Mapped[str | None] = mapped_column(Text)
    port: Mapped[int | None] = mapped_column(Integer)
    token: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(Text)
    gpu_info: Mapped[str | None] = mapped_column(Text)
    gpu_count: Mapped[int | None] = mapped_column(Integer)
    cpu_info: Mapped[str | None] = mapped_column(Text)
    ram_gb: Mapped[int | None] = mapped_column(Integer)
    environment_type: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str | None] = mapped_column(Text)
    kitt_version: Mapped[str | None] = mapped_column(Text)
    # Not a ``*_at`` column, so the reference keeps it TEXT on PostgreSQL too;
    # the fixed-width UTC text form makes it order and compare correctly.
    last_heartbeat: Mapped[datetime | None] = mapped_column(UTCDateTime(text_only=True))
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notes: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[str | None] = mapped_column(Text)

    # An agent does not own its history: the foreign keys have no ON DELETE,
    # so the database refuses to retire an agent that is still referenced, and
    # passive_deletes="all" stops the ORM from nulling those references out.
    campaigns: Mapped[list[WebCampaign]] = relationship(
        back_populates="agent", passive_deletes="all", lazy="raise"
    )
    quick_tests: Mapped[list[QuickTest]] = relationship(
        back_populates="agent", passive_deletes="all", lazy="raise"
    )

    def __repr__(self) -> str:
        # Deliberately leaves out the token column.
        return f"Agent(id={self.id!r}, name={self.name!r}, status={self.status!r})"
