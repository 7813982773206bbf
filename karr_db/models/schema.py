"""The earlier migration system's version table, kept in step with Alembic."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column

from karr_db.models.base import Base


class SchemaVersion(Base):
    """One row per applied schema version.

    Beyond the reference: ``version`` is the primary key (the reference gives
    no constraint), so a version can be recorded only once.
    """

    __tablename__ = "schema_version"

    version: Mapped[int] = mapped_column(
        primary_key=True,
        autoincrement=False,
        comment="Schema version number that a migration recorded",
    )
    applied_at: Mapped[datetime | None] = mapped_column(
        comment="When that version was applied (UTC)"
    )

    def __repr__(self) -> str:
        return f"SchemaVersion(version={self.version!r})"
