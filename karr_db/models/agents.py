"""Agent daemons that run benchmarks on remote GPU hosts."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Mapped, mapped_column

from karr_db.models.base import Base, BlankText, JSONValue, owned_rows, referencing_rows
from karr_db.models.types import UTCDateTime

if TYPE_CHECKING:
    from karr_db.models.campaigns import QuickTest, WebCampaign
    from karr_db.models.engines import AgentEngine
    from karr_db.models.settings import AgentSetting


class Agent(Base):
    """A registered agent; its token is kept only as a SHA-256 digest (``token_hash``)."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(primary_key=True, comment="Agent identifier (UUID)")
    name: Mapped[str | None] = mapped_column(
        unique=True, comment="Human-readable agent name, unique"
    )
    hostname: Mapped[str | None] = mapped_column(comment="Agent hostname or IP address")
    port: Mapped[int | None] = mapped_column(comment="Port the agent listens on")
    token: Mapped[str | None] = mapped_column(
        comment="Empty: the token's SHA-256 digest is in token_hash"
    )
    status: Mapped[str | None] = mapped_column(
        comment="Current status: online, offline, busy, idle or running"
    )
    gpu_info: Mapped[str | None] = mapped_column(comment="GPU description")
    gpu_count: Mapped[int | None] = mapped_column(comment="Number of GPUs on the agent")
    cpu_info: Mapped[str | None] = mapped_column(comment="CPU description")
    ram_gb: Mapped[int | None] = mapped_column(comment="System memory in gigabytes")
    environment_type: Mapped[str | None] = mapped_column(comment="Environment type")
    fingerprint: Mapped[str | None] = mapped_column(comment="Hardware fingerprint")
    kitt_version: Mapped[str | None] = mapped_column(comment="KITT version running on the agent")
    # Not a ``*_at`` column, so the reference keeps it TEXT on PostgreSQL too;
    # the fixed-width UTC text form makes it order and compare correctly.
    last_heartbeat: Mapped[datetime | None] = mapped_column(
        UTCDateTime(text_only=True),
        comment="When the agent last reported in (fixed-width UTC text)",
    )
    registered_at: Mapped[datetime | None] = mapped_column(
        comment="When the agent registered (UTC)"
    )
    notes: Mapped[str | None] = mapped_column(comment="Free-form notes")
    tags: Mapped[str | None] = mapped_column(comment="Comma-separated tags for filtering")
    token_hash: Mapped[BlankText | None] = mapped_column(
        comment="SHA-256 hex digest of the agent's token ('' when it has none)"
    )
    token_prefix: Mapped[BlankText | None] = mapped_column(
        comment="First 8 characters of the token, for display"
    )
    hardware_details: Mapped[JSONValue] = mapped_column(
        comment="Hardware the agent reported (JSON object)"
    )
    cpu_arch: Mapped[BlankText | None] = mapped_column(comment="CPU architecture: amd64 or arm64")

    # An agent does not own its history (the database refuses to retire an
    # agent that campaigns or quick tests still point at); it owns its settings
    # and engine reports.
    campaigns: Mapped[list[WebCampaign]] = referencing_rows(back_populates="agent")
    quick_tests: Mapped[list[QuickTest]] = referencing_rows(back_populates="agent")
    settings: Mapped[list[AgentSetting]] = owned_rows(back_populates="agent")
    engines: Mapped[list[AgentEngine]] = owned_rows(back_populates="agent")

    def __repr__(self) -> str:
        # Deliberately leaves out the token column.
        return f"Agent(id={self.id!r}, name={self.name!r}, status={self.status!r})"
