"""Work handed to agents: campaigns and single quick tests."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from karr_db.models.base import Base
from karr_db.models.types import JSONDocument, UTCDateTime

if TYPE_CHECKING:
    from karr_db.models.agents import Agent
    from karr_db.models.results import Run


class WebCampaign(Base):
    """A campaign defined on the dashboard, with its progress counters."""

    __tablename__ = "web_campaigns"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    config_json: Mapped[Any] = mapped_column(JSONDocument, nullable=True)
    status: Mapped[str | None] = mapped_column(Text)
    agent_id: Mapped[str | None] = mapped_column(Text, ForeignKey("agents.id"))
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    total_runs: Mapped[int | None] = mapped_column(Integer)
    succeeded: Mapped[int | None] = mapped_column(Integer)
    failed: Mapped[int | None] = mapped_column(Integer)
    skipped: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)

    agent: Mapped[Agent | None] = relationship(back_populates="campaigns", lazy="raise")

    def __repr__(self) -> str:
        return f"WebCampaign(id={self.id!r}, name={self.name!r}, status={self.status!r})"


class QuickTest(Base):
    """A single benchmark dispatched to one agent from the web UI."""

    __tablename__ = "quick_tests"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    agent_id: Mapped[str | None] = mapped_column(Text, ForeignKey("agents.id"))
    model_path: Mapped[str | None] = mapped_column(Text)
    engine_name: Mapped[str | None] = mapped_column(Text)
    benchmark_name: Mapped[str | None] = mapped_column(Text)
    suite_name: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result_id: Mapped[str | None] = mapped_column(Text, ForeignKey("runs.id"))
    error: Mapped[str | None] = mapped_column(Text)

    agent: Mapped[Agent | None] = relationship(back_populates="quick_tests", lazy="raise")
    result: Mapped[Run | None] = relationship(back_populates="quick_tests", lazy="raise")

    def __repr__(self) -> str:
        return (
            f"QuickTest(id={self.id!r}, benchmark={self.benchmark_name!r}, status={self.status!r})"
        )
