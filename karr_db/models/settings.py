"""Key-value settings: the dashboard's and each agent's (KITT's schemas 3 and 8)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from karr_db.models.base import Base, BlankText

if TYPE_CHECKING:
    from karr_db.models.agents import Agent

#: The settings every agent has (KITT's schema 8 gives them to existing agents,
#: and KITT adds them to every agent it registers); values are text.
AGENT_SETTING_DEFAULTS: dict[str, str] = {
    "model_storage_dir": "~/.kitt/models",
    "model_share_source": "",
    "model_share_mount": "",
    "auto_cleanup": "true",
    "heartbeat_interval_s": "30",
    "kitt_image": "",
}


class WebSetting(Base):
    """One setting of the web dashboard."""

    __tablename__ = "web_settings"

    key: Mapped[str] = mapped_column(primary_key=True, comment="Setting name")
    value: Mapped[str] = mapped_column(comment="Setting value (text)")

    def __repr__(self) -> str:
        return f"WebSetting(key={self.key!r})"


class AgentSetting(Base):
    """One setting of one agent; deleted with its agent."""

    __tablename__ = "agent_settings"
    __table_args__ = (
        UniqueConstraint("agent_id", "key"),
        Index("idx_agent_settings_agent", "agent_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True, comment="Row identifier")
    agent_id: Mapped[str] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), comment="The agent the setting belongs to"
    )
    key: Mapped[str] = mapped_column(comment="Setting name")
    value: Mapped[BlankText] = mapped_column(comment="Setting value (text)")

    agent: Mapped[Agent] = relationship(back_populates="settings", lazy="raise")

    def __repr__(self) -> str:
        return f"AgentSetting(agent_id={self.agent_id!r}, key={self.key!r})"
