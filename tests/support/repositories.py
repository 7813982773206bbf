"""Repositories on a session a test manages itself, wired as a unit of work wires them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from karr_db.repositories.events import EventsRepository
from karr_db.repositories.results import ResultsRepository


def results_on(session: Session) -> ResultsRepository:
    """The results repository on ``session``, with that session's events repository
    (whose lock its writes take and to which they append)."""
    return ResultsRepository(session, events=EventsRepository(session))
