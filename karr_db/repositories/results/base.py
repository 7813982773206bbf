"""What every part of :class:`~karr_db.repositories.results.ResultsRepository`
works on: the connection reads run on, and for writes the session and the
events repository."""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from karr_db.errors import StorageError
from karr_db.repositories.events import EventsRepository

__all__ = ["ResultsBase"]


class ResultsBase:
    """Bound to a session and the events repository its writes append to (reads and
    writes, in the session's transaction), or to a connection (reads only: a
    read-only unit of work's, or a session's for a caller that only reads; a write
    is refused with :class:`~karr_db.errors.StorageError` before any SQL)."""

    def __init__(self, bind: Session | Connection, events: EventsRepository | None = None) -> None:
        """``events``: the events repository of the same session (the unit of work's),
        whose lock every write takes first and to which it appends; required with a
        session, none with a connection."""
        if isinstance(bind, Session):
            if events is None:
                raise TypeError(
                    "a results repository on a session needs the events repository of "
                    "that session (events=): its writes take the log's lock and append there"
                )
            self._writes: tuple[Session, EventsRepository] | None = (bind, events)
            self._connection: Connection | None = None
        else:
            if events is not None:
                raise TypeError("a results repository on a connection reads only: no events=")
            self._writes, self._connection = None, bind

    @property
    def connection(self) -> Connection:
        """The connection every statement runs on (the session's, in its transaction)."""
        if self._connection is not None:
            return self._connection
        return self.session.connection()

    @property
    def session(self) -> Session:
        """The session writes go through; a read-only repository has none."""
        return self._writing()[0]

    def _writing(self) -> tuple[Session, EventsRepository]:
        """The session writes go through and the events repository they append to; a
        read-only repository refuses the write here, before any SQL."""
        if self._writes is None:
            raise StorageError("writing", "a read-only unit of work cannot write")
        return self._writes
