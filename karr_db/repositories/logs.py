"""The output lines agents send while they run a quick test or a campaign.

``quick_test_logs`` (KITT's schema 7) and ``campaign_logs`` (schema 10) hold one
row per line, numbered by an id that only grows, so "the lines after the last
one I showed" is the way to read them (:meth:`LogLines.list`), as a dashboard
tailing a running test does. Lines are appended in the order given, one
statement per call; each call appends one event (``quick_test.logged`` or
``campaign.logged``) naming the ids it wrote, never the text, so the event log
tells a listener that lines exist without copying them.

Logs belong to their test or campaign: deleting one
(:meth:`~karr_db.repositories.quick_tests.QuickTestsRepository.delete`,
:meth:`~karr_db.repositories.campaigns.CampaignsRepository.delete`) deletes its
lines in the same transaction, and the deletion's event counts them. Retiring
an agent is refused while its tests and campaigns exist, so their logs are kept
until those are deleted.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from karr_db.errors import FieldError, NotFoundError, ValidationError
from karr_db.limits import MAX_LOG_LINE_BYTES, PAGE_LIMIT, sized_text_problem
from karr_db.models import CampaignLog, QuickTest, QuickTestLog, WebCampaign
from karr_db.models.types import utcnow
from karr_db.repositories._base import Repository
from karr_db.repositories._common import (
    DTO,
    Page,
    RowShape,
    check_limit,
    encode_cursor,
    found,
    page_rows,
    resume_after,
)
from karr_db.repositories._validate import checked, fields, int32
from karr_db.repositories.events import EventType

__all__ = [
    "CampaignLogsRepository",
    "LogLineDTO",
    "QuickTestLogsRepository",
]


class LogLineDTO(DTO):
    """One line; ``owner_id`` is its quick test's or campaign's id."""

    id: int
    owner_id: str
    line: str
    created_at: datetime | None


class LogLines(Repository):
    """What both logs do; a subclass names its table, owner and event."""

    model: ClassVar[Any]
    owner_model: ClassVar[Any]
    owner_column: ClassVar[str]
    owner: ClassVar[str]
    event: ClassVar[EventType]
    #: The DTO's columns, made once per subclass.
    shape: ClassVar[RowShape[LogLineDTO]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.shape = RowShape(
            LogLineDTO,
            {
                "id": cls.model.id,
                "owner_id": getattr(cls.model, cls.owner_column),
                "line": cls.model.line,
                "created_at": cls.model.created_at,
            },
        )

    @property
    def _owner_key(self) -> Any:
        return getattr(self.model, self.owner_column)

    def find(self, line_id: int) -> LogLineDTO | None:
        """The line with this id, or ``None``."""
        fields("log line", [("line_id", int32(line_id))])
        return self._one(self.shape, self.model.id == line_id)

    def get(self, line_id: int) -> LogLineDTO:
        """The line with this id; :class:`NotFoundError` naming it."""
        return found("log line", line_id, self.find(line_id))

    def append(self, owner_id: str, lines: Sequence[str]) -> builtins.list[int]:
        """Append ``lines`` in order; their ids, ascending.

        At most :data:`~karr_db.limits.PAGE_LIMIT` lines of at most
        :data:`~karr_db.limits.MAX_LOG_LINE_BYTES` each; one bad line refuses
        the call, naming it (``lines.3``), and nothing is written. An unknown
        owner is :class:`NotFoundError`.
        """
        if isinstance(lines, str | bytes) or not isinstance(lines, Sequence):
            raise ValidationError("log lines", [FieldError("lines", "must be a list of strings")])
        errors = [
            FieldError(f"lines.{index}", problem)
            for index, line in enumerate(lines)
            if (problem := sized_text_problem(line, MAX_LOG_LINE_BYTES))
        ]
        if len(lines) > PAGE_LIMIT:
            errors.append(FieldError("lines", f"holds {len(lines)}, more than {PAGE_LIMIT}"))
        if errors:
            raise ValidationError("log lines", errors)
        if not lines:
            return []
        self._events.lock_log()
        owner = self.session.scalar(
            select(self.owner_model.id).where(self.owner_model.id == owner_id).with_for_update()
        )
        if owner is None:
            raise NotFoundError(self.owner, owner_id)
        created = utcnow()
        ids = list(
            self.session.scalars(
                insert(self.model).returning(self.model.id, sort_by_parameter_order=True),
                [
                    {self.owner_column: owner_id, "line": line, "created_at": created}
                    for line in lines
                ],
            )
        )
        self._events.append(
            self.event,
            source_id=owner_id,
            data={"first_id": ids[0], "last_id": ids[-1], "lines": len(ids)},
        )
        return ids

    def list(
        self,
        owner_id: str,
        *,
        after_id: int = 0,
        limit: int = PAGE_LIMIT,
        cursor: str | None = None,
    ) -> Page[LogLineDTO]:
        """The owner's lines after ``after_id`` (0: from the first), oldest first, one page.

        A tail passes the id of the last line it read as ``after_id``; ``cursor``
        (a page's ``next_cursor``) resumes the same way, as in every ``list``. An
        unknown owner is :class:`NotFoundError` (asked only when the page is empty).
        """
        check_limit(limit)
        after_id = resume_after("log read", after_id, cursor)
        result = self.session.execute(
            select(*self.shape.columns)
            .where(self._owner_key == owner_id, self.model.id > after_id)
            .order_by(self.model.id)
            .limit(limit + 1)
        )
        rows, items = page_rows(result, limit, self.shape.one)
        if (
            not items
            and self.session.scalar(
                select(self.owner_model.id).where(self.owner_model.id == owner_id)
            )
            is None
        ):
            raise NotFoundError(self.owner, owner_id)
        more = len(rows) > limit
        return Page[LogLineDTO](
            items=items, next_cursor=encode_cursor([items[-1].id]) if more else None
        )

    def count(self, owner_id: str) -> int:
        """How many lines the owner has."""
        query = select(func.count()).select_from(self.model)
        return int(self.session.scalar(query.where(self._owner_key == owner_id)) or 0)


def delete_lines(session: Session, model: Any, owner_column: str, owner_id: str) -> int:
    """Delete an owner's lines (its deletion is the caller's, in the same transaction)."""
    result = session.execute(
        delete(model)
        .where(getattr(model, owner_column) == owner_id)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@checked
class QuickTestLogsRepository(LogLines):
    """Quick tests' output lines in the caller's transaction (``quick_test_logs``)."""

    model = QuickTestLog
    owner_model = QuickTest
    owner_column = "test_id"
    owner = "quick test"
    event = EventType.QUICK_TEST_LOGGED


@checked
class CampaignLogsRepository(LogLines):
    """Campaigns' output lines in the caller's transaction (``campaign_logs``)."""

    model = CampaignLog
    owner_model = WebCampaign
    owner_column = "campaign_id"
    owner = "campaign"
    event = EventType.CAMPAIGN_LOGGED
