"""Work handed to agents: campaigns and single quick tests."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from karr_db.models.base import Base, BlankText, JSONValue, referencing_rows

if TYPE_CHECKING:
    from karr_db.models.agents import Agent
    from karr_db.models.logs import CampaignLog, QuickTestLog
    from karr_db.models.results import Run


class WebCampaign(Base):
    """A campaign defined on the dashboard, with its progress counters."""

    __tablename__ = "web_campaigns"

    id: Mapped[str] = mapped_column(primary_key=True, comment="Campaign identifier (UUID)")
    name: Mapped[str | None] = mapped_column(comment="Campaign display name")
    description: Mapped[str | None] = mapped_column(comment="Human-readable description")
    config_json: Mapped[JSONValue] = mapped_column(comment="The full campaign configuration")
    status: Mapped[str | None] = mapped_column(
        comment="Current status: draft, pending, queued, running, completed, failed or cancelled"
    )
    agent_id: Mapped[str | None] = mapped_column(
        ForeignKey("agents.id"), comment="Agent the campaign is assigned to"
    )
    created_at: Mapped[datetime | None] = mapped_column(
        comment="When the campaign was created (UTC)"
    )
    started_at: Mapped[datetime | None] = mapped_column(comment="When execution started (UTC)")
    completed_at: Mapped[datetime | None] = mapped_column(comment="When execution ended (UTC)")
    total_runs: Mapped[int | None] = mapped_column(comment="Number of runs planned")
    succeeded: Mapped[int | None] = mapped_column(comment="Runs that succeeded")
    failed: Mapped[int | None] = mapped_column(comment="Runs that failed")
    skipped: Mapped[int | None] = mapped_column(comment="Runs that were skipped")
    error: Mapped[str | None] = mapped_column(comment="Error message when the campaign failed")

    agent: Mapped[Agent | None] = relationship(back_populates="campaigns", lazy="raise")
    # The database refuses to delete a campaign that still has log lines.
    logs: Mapped[list[CampaignLog]] = referencing_rows(back_populates="campaign")

    def __repr__(self) -> str:
        return f"WebCampaign(id={self.id!r}, name={self.name!r}, status={self.status!r})"


class QuickTest(Base):
    """A single benchmark dispatched to one agent from the web UI."""

    __tablename__ = "quick_tests"

    id: Mapped[str] = mapped_column(primary_key=True, comment="Quick test identifier (UUID)")
    agent_id: Mapped[str | None] = mapped_column(
        ForeignKey("agents.id"), comment="Agent the test is dispatched to"
    )
    model_path: Mapped[str | None] = mapped_column(comment="Model path or name")
    engine_name: Mapped[str | None] = mapped_column(comment="Inference engine")
    benchmark_name: Mapped[str | None] = mapped_column(comment="Benchmark to run")
    suite_name: Mapped[str | None] = mapped_column(comment="Suite name, if any")
    status: Mapped[str | None] = mapped_column(
        comment="Current status: queued, claimed, running, completed, failed or cancelled"
    )
    created_at: Mapped[datetime | None] = mapped_column(
        comment="When the test was dispatched (UTC)"
    )
    started_at: Mapped[datetime | None] = mapped_column(comment="When an agent claimed it (UTC)")
    completed_at: Mapped[datetime | None] = mapped_column(comment="When it ended (UTC)")
    result_id: Mapped[str | None] = mapped_column(
        ForeignKey("runs.id"), comment="The stored run this test produced"
    )
    error: Mapped[str | None] = mapped_column(comment="Error message when the test failed")
    command_id: Mapped[BlankText | None] = mapped_column(
        comment="Id of the command that dispatched the test"
    )
    engine_mode: Mapped[str | None] = mapped_column(
        server_default=text("'docker'"), comment="How the engine runs: docker or native"
    )
    # Text, not a foreign key: KITT writes '' for "no profile".
    profile_id: Mapped[BlankText | None] = mapped_column(
        comment="Engine profile used ('' for none)"
    )

    agent: Mapped[Agent | None] = relationship(back_populates="quick_tests", lazy="raise")
    result: Mapped[Run | None] = relationship(back_populates="quick_tests", lazy="raise")
    # As for campaigns: the database refuses to delete a test that has log lines.
    logs: Mapped[list[QuickTestLog]] = referencing_rows(back_populates="quick_test")

    def __repr__(self) -> str:
        return (
            f"QuickTest(id={self.id!r}, benchmark={self.benchmark_name!r}, status={self.status!r})"
        )
