"""Engine build/run profiles and what engines each agent has (KITT's schema 11)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from karr_db.models.base import Base, BlankText, JSONValue
from karr_db.models.types import UTCDateTime

if TYPE_CHECKING:
    from karr_db.models.agents import Agent


class EngineProfile(Base):
    """A named way to build and run one engine (its configurations are JSON)."""

    __tablename__ = "engine_profiles"
    __table_args__ = (Index("idx_engine_profiles_engine", "engine"),)

    id: Mapped[str] = mapped_column(primary_key=True, comment="Profile identifier")
    name: Mapped[str] = mapped_column(unique=True, comment="Profile name, unique")
    engine: Mapped[str] = mapped_column(comment="Inference engine")
    mode: Mapped[str] = mapped_column(
        server_default=text("'docker'"), comment="How the engine runs: docker or native"
    )
    description: Mapped[BlankText | None] = mapped_column(comment="Human-readable description")
    build_config: Mapped[JSONValue] = mapped_column(
        server_default=text("'{}'"),
        comment="How to build the engine (JSON object)",
    )
    runtime_config: Mapped[JSONValue] = mapped_column(
        server_default=text("'{}'"),
        comment="How to run the engine (JSON object)",
    )
    created_at: Mapped[datetime | None] = mapped_column(
        server_default=text("CURRENT_TIMESTAMP"), comment="When the profile was created (UTC)"
    )
    updated_at: Mapped[datetime | None] = mapped_column(
        server_default=text("CURRENT_TIMESTAMP"), comment="When the profile last changed (UTC)"
    )

    def __repr__(self) -> str:
        return f"EngineProfile(id={self.id!r}, name={self.name!r}, engine={self.engine!r})"


class AgentEngine(Base):
    """One engine in one mode on one agent, as the agent last reported it."""

    __tablename__ = "agent_engines"
    __table_args__ = (
        UniqueConstraint("agent_id", "engine", "mode"),
        Index("idx_agent_engines_agent", "agent_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True, comment="Row identifier")
    agent_id: Mapped[str] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), comment="The agent"
    )
    engine: Mapped[str] = mapped_column(comment="Inference engine")
    mode: Mapped[str] = mapped_column(comment="How the engine runs: docker or native")
    version: Mapped[BlankText | None] = mapped_column(comment="Engine version found")
    binary_path: Mapped[BlankText | None] = mapped_column(comment="Where the engine's binary is")
    status: Mapped[str | None] = mapped_column(
        server_default=text("'unknown'"), comment="What the last check found"
    )
    # Not a ``*_at`` column: TEXT on PostgreSQL too, by the reference's rule.
    last_checked: Mapped[datetime | None] = mapped_column(
        UTCDateTime(text_only=True), comment="When the agent last checked (fixed-width UTC text)"
    )

    agent: Mapped[Agent] = relationship(back_populates="engines", lazy="raise")

    def __repr__(self) -> str:
        return (
            f"AgentEngine(agent_id={self.agent_id!r}, engine={self.engine!r}, mode={self.mode!r})"
        )
