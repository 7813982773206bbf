"""Output lines of quick tests and campaigns (KITT's schemas 7 and 10)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from karr_db.models.base import Base

if TYPE_CHECKING:
    from karr_db.models.campaigns import QuickTest, WebCampaign


class _OutputLine:
    """The columns of an output line, whichever table holds it; each table adds the
    key of what the line belongs to (between ``id`` and ``line``)."""

    # A mixin's columns follow the table's own; ``sort_order`` keeps ``id`` first.
    id: Mapped[int] = mapped_column(
        primary_key=True, sort_order=-1, comment="Line sequence number; readers page after it"
    )
    line: Mapped[str] = mapped_column(comment="One line of output")
    created_at: Mapped[datetime | None] = mapped_column(
        server_default=text("CURRENT_TIMESTAMP"), comment="When the line was stored (UTC)"
    )


class QuickTestLog(_OutputLine, Base):
    """One output line of a quick test, in the order it arrived (by ``id``)."""

    __tablename__ = "quick_test_logs"
    __table_args__ = (
        Index("idx_quick_test_logs_test", "test_id"),
        {"sqlite_autoincrement": True},
    )

    test_id: Mapped[str] = mapped_column(ForeignKey("quick_tests.id"), comment="The quick test")

    quick_test: Mapped[QuickTest] = relationship(back_populates="logs", lazy="raise")

    def __repr__(self) -> str:
        return f"QuickTestLog(id={self.id!r}, test_id={self.test_id!r})"


class CampaignLog(_OutputLine, Base):
    """One output line of a campaign, in the order it arrived (by ``id``)."""

    __tablename__ = "campaign_logs"
    __table_args__ = (
        Index("idx_campaign_logs_campaign", "campaign_id"),
        {"sqlite_autoincrement": True},
    )

    campaign_id: Mapped[str] = mapped_column(ForeignKey("web_campaigns.id"), comment="The campaign")

    campaign: Mapped[WebCampaign] = relationship(back_populates="logs", lazy="raise")

    def __repr__(self) -> str:
        return f"CampaignLog(id={self.id!r}, campaign_id={self.campaign_id!r})"
