"""What every repository that writes events holds, written once."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from karr_db.repositories._common import RowShape
from karr_db.repositories.events import EventsRepository

D = TypeVar("D", bound=BaseModel)


class Repository:
    """A session, and the events repository its changes append to."""

    def __init__(self, session: Session, events: EventsRepository | None = None) -> None:
        """``events``: the unit of work's events repository (one is made on ``session``
        for a session used without a unit of work)."""
        self.session = session
        self._events = events if events is not None else EventsRepository(session)

    def _one(self, shape: RowShape[D], *where: Any) -> D | None:
        """The DTO of the one row ``where`` selects, or ``None``: every ``find``."""
        row = self.session.execute(select(*shape.columns).where(*where)).one_or_none()
        return None if row is None else shape.one(row)
