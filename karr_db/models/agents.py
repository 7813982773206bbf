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

    id: Mapped[str] = mapped_column(Text, primary_key=True, comment="Agent identifier (UUID)")
    name: Mapped[str | None] = mapped_column(
        Text, unique=True, comment="Human-readable agent name, unique"
    )
    hostname: Mapped[str | None] = mapped_column(Text, comment="Agent hostname or IP address")
    port: Mapped[int | None] = mapped_column(Integer, comment="Port the agent listens on")
    token: Mapped[str | None] = mapped_column(
        Text, comment="One-way hash of the agent's authentication token, never the token"
    )
    status: Mapped[str | None] = mapped_column(
        Text, comment="Current status: online, offline, busy, idle or running"
    )
    gpu_info: Mapped[str | None] = mapped_column(Text, comment="GPU description")
    gpu_count: Mapped[int | None] = mapped_column(Integer, comment="Number of GPUs on the agent")
    cpu_info: Mapped[str | None] = mapped_column(Text, comment="CPU description")
    ram_gb: Mapped[int | None] = mapped_column(Integer, comment="System memory in gigabytes")
    environment_type: Mapped[str | None] = mapped_column(Text, comment="Environment type")
    fingerprint: Mapped[str | None] = mapped_column(Text, comment="Hardware fingerprint")
    kitt_version: Mapped[str | None] = mapped_column(
        Text, comment="KITT version running on the agent"
    )
    # Not a ``*_at`` column, so the reference keeps it TEXT on PostgreSQL too;
    # the fixed-width UTC text form makes it order and compare correctly.
    last_heartbeat: Mapped[datetime | None] = mapped_column(
        UTCDateTime(text_only=True),
        comment="When the agent last reported in (fixed-width UTC text)",
    )
    registered_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, comment="When the agent registered (UTC)"
    )
    notes: Mapped[str | None] = mapped_column(Text, comment="Free-form notes")
    tags: Mapped[str | None] = mapped_column(Text, comment="Comma-separated tags for filtering")

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
