"""Reading agents, and the pieces every writing concern shares.

:class:`AgentReads` is the base the token and heartbeat concerns build on: the
session, the event log, lookups and the stale-heartbeat condition.
"""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from karr_db.errors import (
    FieldError,
    ValidationError,
)
from karr_db.limits import earlier
from karr_db.models import Agent
from karr_db.models.types import utcnow
from karr_db.repositories._base import Named
from karr_db.repositories._common import (
    PAGE_LIMIT,
    Page,
    check_limit,
    decode_cursor,
    encode_cursor,
)
from karr_db.repositories.agents.dto import (
    AGENT_STATUSES,
    SHAPE,
    AgentDTO,
    after_name,
    check_now,
    read_name_key,
)
from karr_db.repositories.events import EventType


class AgentReads(Named[AgentDTO]):
    """Agents in the caller's transaction: lookups by id and by name, pages, and
    the shared helpers."""

    model = Agent
    entity = "agent"
    shape = SHAPE

    # --- reading ---------------------------------------------------------------

    def list(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        stale_after: timedelta | None = None,
        now: datetime | None = None,
        limit: int = PAGE_LIMIT,
        cursor: str | None = None,
    ) -> Page[AgentDTO]:
        """Agents by name (nameless legacy rows first), one page at a time;
        filters: exact status, exact tag, and staleness.

        With ``stale_after``, only agents whose last heartbeat is missing or
        older than ``now - stale_after``. Reading never writes: marking stale
        agents offline is :meth:`mark_stale_offline`. ``limit`` defaults to the
        largest page, so one page holds a whole fleet of up to that many agents;
        a larger one pages on with ``cursor=page.next_cursor``.
        """
        check_now(now)
        check_limit(limit)
        conditions: builtins.list[Any] = []
        if status is not None:
            conditions.append(Agent.status == status)
        wanted = None if tag is None else tag.strip()
        if wanted is not None:
            # Narrow in SQL; the exact match (``gpu`` is not ``gpu2``) happens
            # below, because the column may hold either stored form.
            conditions.append(Agent.tags.contains(wanted, autoescape=True))
        if stale_after is not None:
            conditions.append(self._stale_clause(stale_after, now))
        after = None if cursor is None else decode_cursor(cursor, read_name_key)
        items: builtins.list[AgentDTO] = []
        while True:
            query = select(*SHAPE.columns).where(*conditions)
            if after is not None:
                query = query.where(after_name(*after))
            rows = self.session.execute(
                query.order_by(Agent.name.asc().nulls_first(), Agent.id).limit(limit + 1)
            ).all()
            for row in rows:
                agent = SHAPE.one(row)
                if wanted is not None and wanted not in agent.tags:
                    after = (agent.name, agent.id)
                    continue
                if len(items) == limit:
                    last = items[-1]
                    return Page[AgentDTO](
                        items=items, next_cursor=encode_cursor([last.name, last.id])
                    )
                items.append(agent)
                after = (agent.name, agent.id)
            if len(rows) <= limit:
                return Page[AgentDTO](items=items)

    @staticmethod
    def _stale_clause(threshold: timedelta, now: datetime | None) -> Any:
        # last_heartbeat is fixed-width UTC text on both dialects, so comparing
        # the text compares the times.
        cutoff = earlier(now or utcnow(), threshold)
        return or_(Agent.last_heartbeat.is_(None), Agent.last_heartbeat < cutoff)

    # --- helpers --------------------------------------------------------------

    @staticmethod
    def _check_status(status: str) -> None:
        if status not in AGENT_STATUSES:
            raise ValidationError(
                "agent status",
                [FieldError("status", f"must be one of {', '.join(AGENT_STATUSES)}")],
            )

    def _status_event(self, agent_id: str, previous: str | None, status: str, reason: str) -> None:
        self._events.append(
            EventType.AGENT_STATUS_CHANGED,
            source_id=agent_id,
            data={"from": previous, "to": status, "reason": reason},
        )
