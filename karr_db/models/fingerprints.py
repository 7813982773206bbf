"""The content lookup that lets deduplication see runs whose id is not content-derived."""

from __future__ import annotations

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from karr_db.models.base import Base


class RunFingerprint(Base):
    """Beyond the reference (revision 0007): which run a document's content belongs to.

    A run saved through karr_db has the fingerprint as its id; a run adopted
    from the earlier system keeps its random id and is found through this
    table. The primary key makes one run the owner of each content, so two
    processes saving the same document cannot both create a run. Everything
    here is rebuilt from ``runs.raw_json`` (``karr-db rederive``).
    """

    __tablename__ = "run_fingerprints"

    fingerprint: Mapped[str] = mapped_column(
        primary_key=True,
        comment="Content fingerprint of a result document: the UUID karr_db derives its run ids "
        "from (documents.run_id_for)",
    )
    run_id: Mapped[str] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"),
        unique=True,
        comment="The run that saving this content returns: the oldest run holding it",
    )

    def __repr__(self) -> str:
        return f"RunFingerprint(fingerprint={self.fingerprint!r}, run_id={self.run_id!r})"
