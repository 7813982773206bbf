"""Repositories on a session a test manages itself, wired as a unit of work wires them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from karr_db.repositories.events import EventsRepository

R = TypeVar("R")


def on(repository: Callable[..., R], session: Session) -> R:
    """``repository`` on ``session`` as a unit of work gives it: with that session's
    events repository, to which its writes append and whose lock they take (the
    events repository is its own)."""
    if repository is EventsRepository:
        return repository(session)
    events: Any = EventsRepository(session)
    return repository(session, events=events)
